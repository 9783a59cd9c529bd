"""Every error the download package raises, and whether retrying can fix it.

Permanent errors subclass :class:`~hypersim_assets.common.errors.PermanentError` (the
wiring fails the step at once), transient ones :class:`~hypersim_assets.common.errors.TransientError`
(the asset's retry policy tries again):

=======================  =========  =====================================================
error                    kind       raised when
=======================  =========  =====================================================
SourceNotFound           permanent  the server answered 404
HttpStatusError          permanent  a 4xx other than 404, 408 and 429
RangeProtocolError       permanent  a 206 without or with a wrong ``Content-Range``, or a
                                    server that ignored ``Range`` when resuming
RangeNotSupported        permanent  the server ignores ``Range`` and the wanted bytes lie
                                    past ``ignore_range_fallback_limit``
ProxyRefused             permanent  the proxy answered 407, or an error status to ``CONNECT``
TooManyRedirects         permanent  more than ``max_redirects`` redirects in a row (a loop)
CertificateNotTrusted    permanent  the server's TLS certificate does not verify
SceneNotFound            permanent  unknown scene: no zip (or unpacked folder) at the source
InvalidSource            permanent  a source that is not ``upstream``, an http(s) URL with a
                                    host, a ``file://`` URL or a directory path
InvalidSceneName         permanent  a scene name that is not ``ai_NNN_NNN`` (ASCII digits)
ZipFormatError           permanent  the archive is broken or uses a feature we do not read
UnsafeMember             permanent  a member name with ``..``, an absolute path, a
                                    backslash or a drive letter, a symlink entry, or a
                                    name listed twice in the central directory
MemberCorrupt            permanent  a member's CRC-32 or size is wrong after one re-fetch
MemberInflatesPastSize   permanent  a member inflates past its declared size (not re-fetched:
                                    the archive says the same thing twice)
ChecksumMismatch         permanent  a pinned file's sha256 differs
DiskFull                 permanent  ENOSPC, EDQUOT or EFBIG while writing (names scene and file)
TransferFailed           transient  connection reset or refused, timeout, TLS EOF,
                                    ENETUNREACH, EHOSTUNREACH, or a 5xx/408/429, that
                                    outlasted the HTTP-level retries
RemoteChanged            transient  the archive's ETag changed more often than we restart
SceneLocked              transient  another process held the scene's lock past the timeout
=======================  =========  =====================================================
"""

from __future__ import annotations

import errno
from pathlib import Path

from hypersim_assets.common.errors import DiskFullError, PermanentError, TransientError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class DownloadError(Exception):
    """Base of the errors the download package raises."""


# -- HTTP -----------------------------------------------------------------------------


class HttpError(DownloadError):
    """Base of every error the HTTP client raises; ``url`` names the file (password redacted)."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


class SourceNotFound(HttpError, PermanentError):
    """The server answered 404 for ``url``."""


class HttpStatusError(HttpError, PermanentError):
    """A status we do not retry (4xx other than 404, 408, 429)."""

    def __init__(self, message: str, url: str, status: int) -> None:
        super().__init__(message, url)
        self.status = status


class RangeProtocolError(HttpError, PermanentError):
    """The server broke the Range protocol (wrong or missing ``Content-Range``, Range ignored on resume)."""


class RangeNotSupported(RangeProtocolError):
    """The server ignored a Range request for bytes beyond the fallback limit."""


class ProxyRefused(HttpError, PermanentError):
    """The proxy named in the message refused to forward the request."""


class TooManyRedirects(HttpError, PermanentError):
    """More redirects in a row than the client follows."""


class CertificateNotTrusted(HttpError, PermanentError):
    """The server's TLS certificate failed verification (a retry meets the same certificate)."""


class RemoteChanged(HttpError, TransientError):
    """The file's ETag is not the one we started with: its bytes may have changed."""

    def __init__(self, url: str, expected: str | None, actual: str | None) -> None:
        super().__init__(f"{url} changed on the server (ETag {expected} became {actual})", url)
        self.expected = expected
        self.actual = actual


class TransferFailed(HttpError, TransientError):
    """Transient failures outlasted the retries; ``__cause__`` is the last one."""


# -- archives and scenes ----------------------------------------------------------------


class ZipFormatError(DownloadError, PermanentError, ValueError):
    """The archive's structure is broken or uses a feature we do not read; names the archive."""


class UnsafeMember(ZipFormatError):
    """A member that could write outside the scene folder, or clash with another member."""


class InvalidSource(DownloadError, PermanentError, ValueError):
    """A source text we cannot read as ``upstream``, an http(s) URL, a ``file://`` URL or a directory."""


class InvalidSceneName(DownloadError, PermanentError, ValueError):
    """A scene name that is not ``ai_NNN_NNN`` with ASCII digits."""


class SceneNotFound(DownloadError, PermanentError):
    """The scene's zip (or unpacked folder) does not exist at the source."""

    def __init__(self, scene: str, location: str) -> None:
        super().__init__(f"scene {scene}: nothing at {location} (unknown scene, or the source lacks it)")
        self.scene = scene
        self.location = location


class MemberCorrupt(DownloadError, PermanentError):
    """A member's bytes failed verification twice (fetched from zero each time)."""

    def __init__(self, scene: str, member: str, archive: str, detail: str, twice: bool = True) -> None:
        how = "failed verification twice" if twice else "is corrupt"
        super().__init__(f"scene {scene}: member {member} of {archive} {how}: {detail}")
        self.scene = scene
        self.member = member


class MemberInflatesPastSize(MemberCorrupt):
    """A deflated member produced more bytes than the central directory declares; inflation stopped there."""

    def __init__(self, scene: str, member: str, archive: str, declared: int) -> None:
        super().__init__(
            scene,
            member,
            archive,
            f"inflates past its declared size of {declared} bytes (stopped at {declared + 1}; a zip bomb or a "
            "corrupt archive; not fetched again)",
            twice=False,
        )
        self.declared = declared


class DiskFull(DownloadError, DiskFullError):
    """Writing ``path`` of ``scene`` failed for lack of space (or a file size limit); ``free_bytes`` is what was left."""

    def __init__(self, path: Path, free_bytes: int, cause: OSError, scene: str | None = None) -> None:
        where = f"scene {scene}: " if scene else ""
        super().__init__(f"{where}disk full while writing {path}: {free_bytes} bytes free ({cause.strerror})")
        self.errno = cause.errno
        self.path = path
        self.scene = scene
        self.free_bytes = free_bytes


class SceneLocked(DownloadError, TransientError):
    """Another process held the scene's download lock for longer than the timeout."""


class ChecksumMismatch(DownloadError, PermanentError):
    """A downloaded file's sha256 is not the pinned one; nothing was left at the destination."""

    def __init__(self, path: Path, source: str, expected: str, actual: str) -> None:
        super().__init__(f"{path.name} from {source}: sha256 {actual}, expected {expected}")
        self.path = path
        self.expected = expected
        self.actual = actual
