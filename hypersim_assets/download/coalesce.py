"""Coalescing: selected members that lie close together in the zip are fetched with one ranged
request per *run* of them, and the response is split into each member's ``.part`` file, so a
scene costs fewer round trips. Every member is still verified, resumed and recorded on its own
(:func:`~hypersim_assets.download.member_fetch.fetch_member` finishes each one).

A gap between two members is bridged (its bytes fetched and thrown away) when it is at most
``gap_bytes``: worth it while ``gap_bytes / bandwidth`` is below one round trip and the
connections cannot fill the link anyway (with enough of them, round trips overlap and every
bridged byte costs link time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypersim_assets.common.layout import member_frame
from hypersim_assets.download.files import disk_full_or_none, unlink
from hypersim_assets.download.member_fetch import (
    LOCAL_EXTRA_GUESS,
    HeaderThenData,
    SceneRun,
    fetch_member,
    local_span_guess,
    member_files,
)
from hypersim_assets.download.remote_zip import ZipMember

# Members that touch share a request; bridging gaps too (e.g. 256 KiB) paid only with few
# connections (4: 5.87 -> 5.24 s) and cost link time once 16 fill the link (100 ms, 100 Mbit/s:
# 16.73 -> 17.13 s), measured with benchmarks/bench_download.py.
DEFAULT_GAP_BYTES = 0
# A run stops growing past this many bytes, so that a scene's members still spread over the
# parallel connections (one run is one connection) and a retry never repeats much.
DEFAULT_MAX_RUN_BYTES = 8 * 1024 * 1024


def plan_runs(
    members: Sequence[ZipMember], gap_bytes: int, max_run_bytes: int = DEFAULT_MAX_RUN_BYTES
) -> list[list[ZipMember]]:
    """``members`` grouped into runs, in archive order; one request fetches each run.

    A member joins the run before it when the bytes between the end of that run's last member
    (its data, as if its local extra field were empty) and its own local header are at most
    ``gap_bytes`` plus ``LOCAL_EXTRA_GUESS`` (the unknown local extra field or a data descriptor;
    never negative: overlapping members stay apart) and the run spans at most ``max_run_bytes``
    with it. ``gap_bytes=0`` merges members that touch; a negative ``gap_bytes`` turns
    coalescing off (one run per member).
    """
    runs: list[list[ZipMember]] = []
    end = 0  # archive offset where the current run's last member ends, if its local extra field is empty
    for member in sorted(members, key=lambda m: m.header_offset):
        gap = member.header_offset - end
        span_end = member.header_offset + local_span_guess(member)
        if (
            runs
            and gap_bytes >= 0
            and 0 <= gap <= gap_bytes + LOCAL_EXTRA_GUESS
            and span_end - runs[-1][0].header_offset <= max_run_bytes
        ):
            runs[-1].append(member)
        else:
            runs.append([member])
        end = span_end - LOCAL_EXTRA_GUESS
    return runs


FETCH_ORDERS = ("frames", "archive")


def order_runs(runs: list[list[ZipMember]], scene: str, order: str = "frames") -> list[list[ZipMember]]:
    """``runs`` in the order to start their requests.

    ``"frames"``: runs holding a scene-wide member (``_detail`` files every frame reads) first,
    then by the lowest (frame index, camera) they hold, so a frame's members all arrive early
    and its conversion can start while later frames are still coming; ties keep archive order.
    ``"archive"``: as planned (archive order), the order before frames could be converted during
    the download (kept for ``benchmarks/bench_download.py``).
    """
    if order not in FETCH_ORDERS:
        raise ValueError(f"fetch order must be one of {FETCH_ORDERS}, not {order!r}")
    if order == "archive":
        return list(runs)

    def key(run: list[ZipMember]) -> tuple[int, str]:
        frames = [member_frame(scene, m.name) for m in run]
        if any(f is None for f in frames):
            return (-1, "")
        return min((fid, cam) for cam, fid in frames)  # type: ignore[misc]

    return sorted(runs, key=key)


class _MemberFailed(Exception):
    """Internal: finishing a member inside the run's response failed; carries why, past the
    HTTP client's body retries (which must not resume the run's request over it)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _RunSink:
    """Splits one response that starts at the first member's local header: member ``i`` gets the
    bytes from its local header up to the next member's (the last: to the end of the range), which
    its :class:`HeaderThenData` trims to header and data; bytes in the gaps are dropped. As soon
    as a member's header and data are all in (not waiting for the gap after it), ``finish`` verifies it and moves it into place, so members
    land (and free their ``.part`` space) while later ones are still arriving."""

    def __init__(
        self,
        start: int,
        bounds: list[tuple[int, int]],
        sinks: list[HeaderThenData],
        finish: Callable[[HeaderThenData], None],
    ) -> None:
        self.at = start  # archive offset of the next byte to arrive
        self.bounds, self.sinks, self.finish = bounds, sinks, finish
        self.index = 0  # the member that takes (or waits for) the next bytes

    @property
    def current(self) -> HeaderThenData | None:
        return self.sinks[self.index] if self.index < len(self.sinks) else None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        first, last = self.at, self.at + len(data)
        while self.index < len(self.sinks):
            lo, hi = self.bounds[self.index]
            if lo >= last:
                break
            start, stop = max(lo, first), min(hi, last)
            sink = self.sinks[self.index]
            if stop > start and not sink.complete:
                sink.write(bytes(view[start - first : stop - first]))
            if hi > last and not sink.complete:
                break
            self.finish_current()
        self.at = last

    def finish_current(self) -> None:
        sink = self.sinks[self.index]
        sink.close()
        self.index += 1
        try:
            self.finish(sink)
        except Exception as exc:
            raise _MemberFailed(exc) from exc

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def fetch_run(run: SceneRun, members: Sequence[ZipMember], on_done: Callable[[ZipMember], None]) -> None:
    """Fetch ``members`` (one run of :func:`plan_runs`, none with a ``.part`` file to continue) with one
    ranged request, finishing each member (the rest of its data if its local extra field was longer
    than guessed, verify, rename, manifest; ``on_done``) as soon as its bytes are in.

    A request that breaks after its retries leaves the member being written as a resumable
    ``.part`` file; a full disk removes it.
    """
    archive = run.directory.archive
    for member in members:
        member.check_supported(archive)
    files = [member_files(run, m) for m in members]
    sinks = [HeaderThenData(run, m, part, sidecar) for m, (_, part, sidecar) in zip(members, files)]
    start = members[0].header_offset
    stop = min(run.reader.size, members[-1].header_offset + local_span_guess(members[-1]))
    bounds = [(m.header_offset, nxt.header_offset) for m, nxt in zip(members, members[1:])]
    bounds.append((members[-1].header_offset, stop))

    def finish(sink: HeaderThenData) -> None:
        if run.abort.is_set():  # another worker failed: leave the .part for a later run
            return
        fetch_member(run, sink.member, prefetched=sink)
        on_done(sink.member)

    splitter = _RunSink(start, bounds, sinks, finish)
    failed: BaseException | None = None
    try:
        run.reader.copy_range(start, stop - start, splitter)
        while splitter.index < len(sinks):  # only if the range ended early (it cannot, but never skip a member)
            splitter.finish_current()
    except _MemberFailed as exc:
        failed = exc.cause
    except OSError as exc:
        current = splitter.current
        if current is not None:
            full = disk_full_or_none(exc, current.part, run.scene)
            if full is not None:
                current.close()
                unlink(current.part, current.sidecar)
                raise full from exc
        raise
    finally:
        splitter.close()
    if failed is not None:
        raise failed
