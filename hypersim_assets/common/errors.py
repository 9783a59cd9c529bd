"""Which failures are permanent and which are transient: the one place that decides
whether a failed step is retried.

A *permanent* error cannot go away by trying again with the same inputs (malformed
metadata, a missing local file, an unknown scene, a 404, a CRC mismatch after one
re-fetch, a server that breaks the Range protocol, a full disk, a member that inflates
past its declared size): the asset fails at once, without retries, and its message
names the scene, member or file and why. A *transient* error (a dropped connection,
a timeout, a 5xx that outlived the HTTP retries) is retried by the asset's retry policy.

Domain modules raise subclasses of :class:`PermanentError` (or one of the standard
exceptions listed in :data:`PERMANENT_BUILTINS`); the Dagster wiring asks
:func:`is_permanent` and raises ``dg.Failure(allow_retries=False)`` for those.
"""

from __future__ import annotations

import errno


class PermanentError(Exception):
    """An error that retrying with the same inputs cannot fix; its message says what and where."""


class TransientError(Exception):
    """An error worth retrying (network trouble that outlived the HTTP-level retries)."""


class DiskFullError(PermanentError, OSError):
    """The file system holding the data root is full (ENOSPC) or over quota (EDQUOT)."""


# OS errors whose errno means "the same write will fail again".
PERMANENT_ERRNOS: frozenset[int] = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR}
)

# Standard exceptions that are permanent wherever they come from.
PERMANENT_BUILTINS: tuple[type[BaseException], ...] = (FileNotFoundError, PermissionError, IsADirectoryError)


def is_permanent(exc: BaseException) -> bool:
    """True when ``exc`` (or the error it was raised from) cannot be fixed by retrying.

    ``TransientError`` wins over everything else; ``PermanentError`` subclasses, the
    standard exceptions in :data:`PERMANENT_BUILTINS` and OS errors whose errno is in
    :data:`PERMANENT_ERRNOS` are permanent; anything else is treated as transient.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TransientError):
            return False
        if isinstance(current, (PermanentError, *PERMANENT_BUILTINS)):
            return True
        if isinstance(current, OSError) and current.errno in PERMANENT_ERRNOS:
            return True
        current = current.__cause__
    return False


def describe(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` followed by the chain of causes, for a console or a run log."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)
