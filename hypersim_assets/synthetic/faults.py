"""The mirror server's switchable faults (failed statuses, dropped responses, ignored ranges,
changing ETags, slow chunks) and the per-server counters that decide when each fires.

Counters only count requests the faults apply to (existing files whose path contains
``path_filter``); replacing the ``Faults`` resets them, mutating it in place keeps them.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass


@dataclass
class Faults:
    """Misbehaviour to switch on. Counts are per server; ``-1`` in a ``*_times`` field means always."""

    drop_after_bytes: int | None = None  # close the connection after this many body bytes of a response
    drop_times: int = 1  # how many responses get dropped (then normal again); -1 = always
    fail_status: int | None = None  # answer this status (e.g. 500, 503) ...
    fail_times: int = 0  # ... this many times, then normal; -1 = always
    ignore_range: bool = False  # answer 200 with the whole file even when Range was asked
    etag_change_after: int | None = None  # after this many requests every file's ETag changes
    delay_s: float = 0.0  # sleep this long (seconds) before each body chunk of CHUNK_BYTES
    path_filter: str | None = None  # faults apply only to request paths containing this substring


@dataclass
class _Counters:
    seen: int = 0  # requests the faults applied to (drives etag_change_after)
    failed: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Admission:
    """What the faults decide for one request: a snapshot of them, whether they apply, the ETag
    generation to use, and the status to fail with (None: answer normally)."""

    faults: Faults
    applies: bool
    generation: int
    fail_status: int | None


class FaultState:
    """The current ``Faults`` and their counters, safe to use from the server's request threads."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults if faults is not None else Faults()
        self._counters = _Counters()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        with self._lock:
            self._faults = value
            self._counters = _Counters()

    def admit(self, path: str) -> Admission:
        """Count a request for an existing file and decide its faults."""
        with self._lock:
            faults = dataclasses.replace(self._faults)
            applies = faults.path_filter is None or faults.path_filter in path
            if not applies:
                return Admission(faults, False, 0, None)
            c = self._counters
            c.seen += 1
            generation = int(faults.etag_change_after is not None and c.seen > faults.etag_change_after)
            fail = None
            if faults.fail_status is not None and (faults.fail_times < 0 or c.failed < faults.fail_times):
                c.failed += 1
                fail = faults.fail_status
            return Admission(faults, True, generation, fail)

    def claim_drop(self) -> bool:
        """True if this response is one of the ``drop_times`` to cut short (and count it)."""
        with self._lock:
            times = self._faults.drop_times
            if times >= 0 and self._counters.dropped >= times:
                return False
            self._counters.dropped += 1
            return True
