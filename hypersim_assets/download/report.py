"""What a scene fetch reports: the per-call summary and the per-member progress event."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class FetchReport:
    """What one :func:`fetch_scene_members` call did. Bytes are bytes; ``seconds`` wall time."""

    scene: str
    members_selected: int = 0
    members_fetched: int = 0
    members_skipped: int = 0  # already complete from an earlier run (or another process)
    bytes_fetched: int = 0  # bytes transferred, including the central directory, discarded bytes and retries
    bytes_selected: int = 0  # compressed bytes of the selected members
    zip_bytes: int = 0  # size of the whole archive (0 for an unpacked local folder)
    seconds: float = 0.0
    throughput: float = 0.0  # bytes_fetched / seconds
    retries: int = 0
    restarts: int = 0  # fresh starts after the archive changed mid-scene
    resumed_members: int = 0  # members continued from a .part file
    resumed_bytes: int = 0  # compressed bytes those .part files already held
    verified: str = "crc32"  # "crc32", or "size" for an unpacked local folder (no CRC available)


@dataclass(frozen=True)
class FetchProgress:
    """Passed to the ``progress`` callback after each member is in place."""

    scene: str
    member: str
    members_done: int
    members_total: int
    bytes_fetched: int


def finish(report: FetchReport, started: float) -> FetchReport:
    """Fill in the report's wall time and throughput."""
    report.seconds = time.monotonic() - started
    report.throughput = report.bytes_fetched / report.seconds if report.seconds > 0 else 0.0
    return report
