"""Fetching the selected members of one scene into the raw folder, laid out as
upstream's zip is (``raw_root/<scene>/...``): resumable, verified, and safe to
run twice at once; plus the metadata-CSV download and the raw-scene delete.

On disk, per member ``<name>``:

* ``<name>.part`` holds the member's *compressed* bytes fetched so far, and
  ``<name>.part.json`` the archive ETag and the member's offsets, sizes and
  CRC-32 they belong to. A later run continues the ``.part`` with a Range
  request from its size, unless the archive or member changed (then it starts over).
* ``<name>`` appears (``os.replace``) only after its size and CRC-32 matched the
  central directory.

Per scene, ``raw_root/<scene>/.hypersim-manifest.json`` records each verified
member (size, CRC-32, compressed size) and the archive it came from, and
``raw_root/<scene>/.hypersim-download.lock`` is held (``flock``) for the whole
fetch, so a second process fetching the same scene waits for the first
(up to ``lock_timeout_s``, default 6 h, then :class:`SceneLocked`) and then
finds the work done.

Failure policy: a member whose CRC-32 does not match is fetched once more from
its first byte, then :class:`MemberCorrupt`; an archive whose ETag changes
mid-scene is started over from a fresh central directory (at most
``MAX_RESTARTS`` times; members already verified are kept when their CRC and
sizes did not change); a full disk raises :class:`DiskFull` and removes that
member's partial files. A local folder of unpacked scenes is hard-linked (or
copied) and checked by size only, since it carries no CRC.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hypersim_assets.common.layout import SCENE_NAME_RE, MemberSelection
from hypersim_assets.download.http_client import (
    HttpClient,
    RemoteChanged,
    RetryConfig,
    SourceNotFound,
    TransferStats,
)
from hypersim_assets.download.remote_zip import (
    DEFLATED,
    LOCAL_HEADER_FIXED,
    STORED,
    ByteRangeReader,
    CentralDirectory,
    FileRangeReader,
    HttpRangeReader,
    ZipFormatError,
    ZipMember,
    parse_local_header,
    read_central_directory,
)
from hypersim_assets.download.source import HypersimSource, Location

MANIFEST_NAME = ".hypersim-manifest.json"
LOCK_NAME = ".hypersim-download.lock"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
MANIFEST_VERSION = 1
MAX_RESTARTS = 2  # fresh central-directory reads after the archive changed mid-scene
_COPY_CHUNK = 1 << 20
_MANIFEST_SAVE_INTERVAL_S = 1.0
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# Bytes of local-header extra field we expect at most when fetching header and data in one request
# (zip64 and timestamp fields are 20-36 bytes); more costs one extra request for the data's tail.
_LOCAL_EXTRA_GUESS = 64


# -- errors ---------------------------------------------------------------------


class DownloadError(Exception):
    """Base of the errors this module raises."""


class SceneNotFound(DownloadError):
    """The scene's zip (or unpacked folder) does not exist at the source."""

    def __init__(self, scene: str, location: str) -> None:
        super().__init__(f"scene {scene}: nothing at {location} (unknown scene, or the source lacks it)")
        self.scene = scene
        self.location = location


class MemberCorrupt(DownloadError):
    """A member's bytes failed verification twice (fetched from zero each time)."""

    def __init__(self, scene: str, member: str, archive: str, detail: str) -> None:
        super().__init__(f"scene {scene}: member {member} of {archive} failed verification twice: {detail}")
        self.scene = scene
        self.member = member


class DiskFull(DownloadError):
    """Writing ``path`` failed for lack of space (or a file size limit); ``free_bytes`` is what was left."""

    def __init__(self, path: Path, free_bytes: int, cause: OSError) -> None:
        super().__init__(f"disk full while writing {path}: {free_bytes} bytes free ({cause.strerror})")
        self.path = path
        self.free_bytes = free_bytes


class SceneLocked(DownloadError):
    """Another process held the scene's download lock for longer than the timeout."""


class ChecksumMismatch(DownloadError):
    """A downloaded file's sha256 is not the pinned one; nothing was left at the destination."""

    def __init__(self, path: Path, source: str, expected: str, actual: str) -> None:
        super().__init__(f"{path.name} from {source}: sha256 {actual}, expected {expected}")
        self.path = path
        self.expected = expected
        self.actual = actual


# -- report ---------------------------------------------------------------------


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


# -- small file helpers -----------------------------------------------------------


def _free_bytes(path: Path) -> int:
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return -1


def _unlink(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to a temp file beside ``path``, fsync it and replace ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink(Path(tmp))
        raise


def _read_json(path: Path) -> dict | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_scene_name(scene: str) -> None:
    if not SCENE_NAME_RE.match(scene):
        raise ValueError(f"scene name {scene!r} is not of the form ai_NNN_NNN")


def _member_path(raw_root: Path, scene: str, name: str) -> Path:
    """``raw_root/<name>`` after checking that ``name`` stays inside the scene folder."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or parts[0] != scene:
        raise ZipFormatError(f"scene {scene}: refusing member name {name!r} (must be a relative path below {scene}/)")
    return raw_root.joinpath(*parts)


# -- the scene lock -----------------------------------------------------------------


@contextlib.contextmanager
def scene_lock(scene_dir: Path, timeout_s: float | None) -> Iterator[None]:
    """Hold ``scene_dir/.hypersim-download.lock`` exclusively (``flock``); wait at most ``timeout_s`` (None: forever).

    After acquiring, the lock file is checked to still be the one at that path
    (a concurrent :func:`delete_scene_raw` may have removed the folder), else we retry.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    lock_path = scene_dir / LOCK_NAME
    while True:
        scene_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise SceneLocked(
                            f"{lock_path} is held by another download of this scene for more than {timeout_s} s"
                        ) from None
                    time.sleep(0.05)
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)  # also releases the lock


# -- the manifest -------------------------------------------------------------------


class _Manifest:
    """The per-scene record of verified members, saved atomically at most once per interval unless forced.

    A recorded member is *pending* until the next save, which first fsyncs its file
    (and folder): the saved manifest never lists a file that a power cut could lose.
    Files in place but not listed are re-verified by CRC before being trusted.
    """

    def __init__(self, path: Path, scene: str) -> None:
        self.path = path
        data = _read_json(path) or {}
        if data.get("version") != MANIFEST_VERSION or data.get("scene") != scene:
            data = {"version": MANIFEST_VERSION, "scene": scene, "archive": {}, "members": {}}
        self.data = data
        self._pending: dict[str, tuple[dict, Path]] = {}
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._dirty = False
        self._saved_at = time.monotonic()

    def entry(self, name: str) -> dict | None:
        with self._lock:
            if name in self._pending:
                return self._pending[name][0]
            return self.data["members"].get(name)

    def set_archive(self, archive: str, size: int, etag: str | None) -> None:
        with self._lock:
            self.data["archive"] = {"location": archive, "size": size, "etag": etag}
            self._dirty = True

    def record(self, name: str, entry: dict, path: Path) -> None:
        with self._lock:
            self._pending[name] = (entry, path)
        self.save(force=False)

    def forget(self, name: str) -> None:
        with self._lock:
            self._pending.pop(name, None)
            if self.data["members"].pop(name, None) is not None:
                self._dirty = True

    def save(self, force: bool = True) -> None:
        with self._save_lock:
            with self._lock:
                if not (self._dirty or self._pending):
                    return
                if not force and time.monotonic() - self._saved_at < _MANIFEST_SAVE_INTERVAL_S:
                    return
                pending, self._pending = self._pending, {}
            durable = {}
            for name, (entry, path) in pending.items():
                try:
                    _fsync_path(path)
                except OSError:
                    continue  # not durable, not listed: a later run re-verifies or refetches it
                durable[name] = entry
            for folder in {path.parent for _, path in pending.values()}:
                with contextlib.suppress(OSError):
                    _fsync_path(folder)
            with self._lock:
                self.data["members"].update(durable)
                snapshot = json.loads(json.dumps(self.data))
                self._dirty = False
                self._saved_at = time.monotonic()
            _write_json_atomic(self.path, snapshot)


def manifest_fingerprint(raw_root: Path, scene: str) -> str:
    """A short hash of the scene's verified members (names, sizes, CRCs): the raw scene's data version.

    Unchanged members give the same fingerprint, whichever run fetched them.
    """
    data = _read_json(Path(raw_root) / scene / MANIFEST_NAME) or {}
    members = data.get("members", {})
    digest = hashlib.sha256()
    for name in sorted(members):
        entry = members[name]
        digest.update(f"{name}\0{entry.get('size')}\0{entry.get('crc32')}\n".encode())
    return digest.hexdigest()[:24]


@contextlib.contextmanager
def _saved_manifest(scene_dir: Path, scene: str) -> Iterator[_Manifest]:
    """The scene's manifest, saved when the block ends, also when it fails: what was
    verified is kept, but a failing save (e.g. the disk is full) never hides the cause."""
    manifest = _Manifest(scene_dir / MANIFEST_NAME, scene)
    try:
        yield manifest
    except BaseException:
        with contextlib.suppress(OSError):
            manifest.save(force=True)
        raise
    manifest.save(force=True)


def _finish(report: FetchReport, started: float) -> FetchReport:
    """Fill in the report's wall time and throughput."""
    report.seconds = time.monotonic() - started
    report.throughput = report.bytes_fetched / report.seconds if report.seconds > 0 else 0.0
    return report


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _manifest_entry(member: ZipMember) -> dict:
    return {
        "size": member.file_size,
        "crc32": member.crc32,
        "compressed_size": member.compressed_size,
        "verified": "crc32",
    }


def _file_crc32(path: Path) -> tuple[int, int]:
    """(CRC-32, size in bytes) of a file."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return crc, size


# -- one member ------------------------------------------------------------------------


class _CountingFile:
    """A binary file that counts what is written to it."""

    def __init__(self, f) -> None:  # noqa: ANN001 - any binary file
        self.f = f
        self.written = 0

    def write(self, data: bytes) -> int:
        n = self.f.write(data)
        self.written += len(data)
        return n


@dataclass
class _SceneRun:
    scene: str
    raw_root: Path
    reader: ByteRangeReader
    directory: CentralDirectory
    manifest: _Manifest
    abort: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    resumed_members: int = 0
    resumed_bytes: int = 0
    fetched: int = 0


def _sidecar_for(run: _SceneRun, member: ZipMember, data_offset: int) -> dict:
    return {
        "archive_etag": run.directory.etag,
        "archive_size": run.directory.size,
        "member": member.name,
        "header_offset": member.header_offset,
        "data_offset": data_offset,
        "compressed_size": member.compressed_size,
        "file_size": member.file_size,
        "crc32": member.crc32,
    }


def _resume_point(run: _SceneRun, member: ZipMember, part: Path, sidecar: Path) -> tuple[int, int] | None:
    """(data offset, bytes already in ``part``) when ``part`` may be continued; else removes both and returns None."""
    info = _read_json(sidecar)
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        have = -1
    if info is not None and have >= 0:
        expected = _sidecar_for(run, member, info.get("data_offset", -1))
        if info == expected and have <= member.compressed_size and run.directory.etag is not None:
            return int(info["data_offset"]), have
    _unlink(part, sidecar)
    return None


def _verify_into(
    archive: str, member: ZipMember, part: Path, out: Path, stored_crc: tuple[int, int] | None
) -> str | None:
    """Check size and CRC-32 of a member whose compressed bytes are in ``part``; returns a problem or None.

    Deflated members are inflated into ``out`` on the way. For stored members
    ``stored_crc`` is (CRC-32, size) computed while the bytes arrived, if known.
    """
    crc, size = 0, 0
    if member.compress_type == STORED:
        crc, size = stored_crc if stored_crc is not None else _file_crc32(part)
    else:
        decomp = zlib.decompressobj(-15)
        with open(part, "rb") as src, open(out, "wb") as dst:
            try:
                while chunk := src.read(_COPY_CHUNK):
                    data = decomp.decompress(chunk)
                    crc = zlib.crc32(data, crc)
                    size += len(data)
                    dst.write(data)
                data = decomp.flush()
            except zlib.error as exc:
                return f"deflate stream is broken ({exc})"
            crc = zlib.crc32(data, crc)
            size += len(data)
            dst.write(data)
            if not decomp.eof:
                return "deflate stream ends early"
    if size != member.file_size:
        return f"{size} bytes, expected {member.file_size}"
    if crc != member.crc32:
        return f"CRC-32 {crc:08x}, expected {member.crc32:08x}"
    return None


class _CrcFile:
    """A binary file that keeps the CRC-32 and count of what is written to it."""

    def __init__(self, f, crc: int = 0, size: int = 0) -> None:  # noqa: ANN001 - any binary file
        self.f, self.crc, self.size = f, crc, size

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)


class _HeaderThenData:
    """Sink for one request that starts at a member's local header: parses the header, then
    writes the member's compressed bytes (at most ``compressed_size``) to the ``.part`` file.

    Saves a round trip per member. The local header's extra field may be longer than we
    guessed; then fewer data bytes arrive and the caller fetches the rest.
    """

    def __init__(self, run: _SceneRun, member: ZipMember, part: Path, sidecar: Path) -> None:
        self.run, self.member, self.part, self.sidecar = run, member, part, sidecar
        self.head = bytearray()
        self.header_len: int | None = None
        self.pos = 0  # bytes seen, counted from the local header's first byte
        self.raw = None
        self.file: _CrcFile | None = None

    @property
    def data_offset(self) -> int | None:
        return None if self.header_len is None else self.member.header_offset + self.header_len

    def write(self, data: bytes) -> None:
        if self.header_len is None:
            self.head += data
            if len(self.head) < LOCAL_HEADER_FIXED:
                return
            self.header_len = parse_local_header(
                self.run.directory.archive, self.member, bytes(self.head[:LOCAL_HEADER_FIXED])
            )
            # The sidecar first: a .part without a valid one is never continued (so a torn write is harmless).
            self.sidecar.write_text(json.dumps(_sidecar_for(self.run, self.member, self.data_offset)))  # type: ignore[arg-type]
            self.raw = open(self.part, "wb")
            self.file = _CrcFile(self.raw)
            data, self.head = bytes(self.head), bytearray()
        start = max(0, self.header_len - self.pos)
        end = min(len(data), self.header_len + self.member.compressed_size - self.pos)
        if end > start:
            self.file.write(data[start:end])  # type: ignore[union-attr]
        self.pos += len(data)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()


def _fetch_member(run: _SceneRun, member: ZipMember) -> None:
    """Bring one member into place (resume, fetch, verify, rename); retries once from zero on a bad CRC."""
    archive = run.directory.archive
    member.check_supported(archive)
    dest = _member_path(run.raw_root, run.scene, member.name)
    part = dest.with_name(dest.name + PART_SUFFIX)
    sidecar = dest.with_name(dest.name + SIDECAR_SUFFIX)
    out = dest.with_name(dest.name + ".inflating")
    dest.parent.mkdir(parents=True, exist_ok=True)
    current = part
    try:
        for attempt in range(2):
            resume = _resume_point(run, member, part, sidecar)
            if resume is None:
                # One request for the local header and (we guess) all of the data after it.
                name_len = len(member.name.encode("utf-8" if member.flag_bits & 0x800 else "cp437"))
                guess = LOCAL_HEADER_FIXED + name_len + _LOCAL_EXTRA_GUESS + member.compressed_size
                sink = _HeaderThenData(run, member, part, sidecar)
                try:
                    run.reader.copy_range(
                        member.header_offset, min(guess, run.reader.size - member.header_offset), sink
                    )
                finally:
                    sink.close()
                if sink.data_offset is None:
                    raise ZipFormatError(
                        f"{archive}: member {member.name}: local header cut short at {member.header_offset}"
                    )
                data_offset = sink.data_offset
                crc, have = (sink.file.crc, sink.file.size) if sink.file is not None else (0, 0)
            else:
                data_offset, have = resume
                crc = _file_crc32(part)[0] if member.compress_type == STORED else 0
                if have:
                    with run.lock:
                        run.resumed_members += 1
                        run.resumed_bytes += have
            with open(part, "ab") as f:
                tracked = _CrcFile(f, crc, have)
                if have < member.compressed_size:
                    run.reader.copy_range(data_offset + have, member.compressed_size - have, tracked)
            current = out
            stored_crc = (tracked.crc, tracked.size) if member.compress_type == STORED else None
            problem = _verify_into(archive, member, part, out, stored_crc)
            current = part
            if problem is None:
                os.replace(out if member.compress_type == DEFLATED else part, dest)
                _unlink(part, sidecar, out)
                run.manifest.record(member.name, _manifest_entry(member), dest)
                return
            _unlink(part, sidecar, out)
            if attempt == 1:
                raise MemberCorrupt(run.scene, member.name, archive, problem)
    except OSError as exc:
        if exc.errno in _DISK_FULL_ERRNOS:
            _unlink(part, sidecar, out)
            raise DiskFull(current, _free_bytes(current.parent), exc) from exc
        raise
    except BaseException:
        _unlink(out)
        raise


def _member_complete(run: _SceneRun, member: ZipMember, verify: bool) -> bool:
    """True if a previous run left this member verified and in place (re-checking its CRC when ``verify``)."""
    dest = _member_path(run.raw_root, run.scene, member.name)
    try:
        size = dest.stat().st_size
    except FileNotFoundError:
        run.manifest.forget(member.name)
        return False
    if size != member.file_size:
        return False
    entry = run.manifest.entry(member.name)
    wanted = _manifest_entry(member)
    if entry == wanted and not verify:
        return True
    # Not recorded (e.g. killed between the rename and the manifest save) or asked to verify: check the CRC.
    crc, _ = _file_crc32(dest)
    if crc == member.crc32:
        if entry != wanted:
            run.manifest.record(member.name, wanted, dest)
        return True
    run.manifest.forget(member.name)
    return False


# -- a scene from a zip ---------------------------------------------------------------------


def _open_reader(location: Location, scene: str, client: HttpClient) -> ByteRangeReader:
    try:
        if location.is_remote:
            return HttpRangeReader(client, location.url)  # type: ignore[arg-type]
        return FileRangeReader(location.path)  # type: ignore[arg-type]
    except (SourceNotFound, FileNotFoundError) as exc:
        raise SceneNotFound(scene, str(location)) from exc


def _run_members(
    run: _SceneRun,
    todo: list[ZipMember],
    workers: int,
    progress: Callable[[FetchProgress], None] | None,
    done_before: int,
    total: int,
    bytes_so_far: Callable[[], int],
) -> None:
    """Fetch ``todo`` on a thread pool; on the first error stop starting new members and raise it."""
    errors: list[BaseException] = []
    done = done_before
    done_lock = threading.Lock()

    def task(member: ZipMember) -> None:
        nonlocal done
        if run.abort.is_set():
            return
        try:
            _fetch_member(run, member)
        except BaseException as exc:
            run.abort.set()
            errors.append(exc)
            return
        with done_lock:
            run.fetched += 1
            done += 1
            n = done
        if progress is not None:
            progress(FetchProgress(run.scene, member.name, n, total, bytes_so_far()))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"fetch-{run.scene}") as pool:
        list(pool.map(task, todo))
    if errors:
        # A changed archive wins: it explains the other failures and is recoverable.
        changed = [e for e in errors if isinstance(e, RemoteChanged)]
        raise changed[0] if changed else errors[0]


def fetch_scene_members(
    zip_location: Location,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    workers: int = 4,
    retry: RetryConfig = RetryConfig(),
    progress: Callable[[FetchProgress], None] | None = None,
    verify: bool = False,
    lock_timeout_s: float | None = 6 * 3600.0,
    on_retry: Callable[[str, BaseException, int], None] | None = None,
) -> FetchReport:
    """Fetch the members of ``scene`` that ``selection`` picks into ``raw_root/<member name>``.

    ``zip_location`` is the scene's zip (URL or local path) or a local folder of
    the already unpacked scene (then files are hard-linked or copied and checked
    by size only). Members a previous run completed are skipped (``verify=True``
    re-checks their CRC-32). Waits up to ``lock_timeout_s`` seconds for another
    process fetching the same scene.
    """
    _check_scene_name(scene)
    raw_root = Path(raw_root)
    if zip_location.path is not None and Path(zip_location.path).is_dir():
        return _copy_unpacked(Path(zip_location.path), scene, raw_root, selection, progress, lock_timeout_s)
    started = time.monotonic()
    report = FetchReport(scene=scene)
    stats = TransferStats()
    scene_dir = raw_root / scene
    with (
        scene_lock(scene_dir, lock_timeout_s),
        HttpClient(retry, stats, on_retry) as client,
        _saved_manifest(scene_dir, scene) as manifest,
    ):
        file_bytes = 0  # bytes read by local-file readers of finished attempts
        reader: ByteRangeReader | None = None

        def transferred() -> int:
            local = getattr(reader, "bytes_read", 0) if reader is not None else 0
            return stats.bytes_received + file_bytes + local

        try:
            for restart in range(MAX_RESTARTS + 1):
                run: _SceneRun | None = None
                try:
                    reader = _open_reader(zip_location, scene, client)
                    directory = read_central_directory(reader)
                    manifest.set_archive(str(zip_location), directory.size, directory.etag)
                    members = [m for m in directory.members if selection.matches(scene, m.name)]
                    run = _SceneRun(scene, raw_root, reader, directory, manifest)
                    # Partial members fetched under another ETag cannot be continued: drop them now.
                    for m in members:
                        dest = _member_path(raw_root, scene, m.name)
                        if (
                            dest.with_name(dest.name + SIDECAR_SUFFIX).exists()
                            or dest.with_name(dest.name + PART_SUFFIX).exists()
                        ):
                            _resume_point(
                                run,
                                m,
                                dest.with_name(dest.name + PART_SUFFIX),
                                dest.with_name(dest.name + SIDECAR_SUFFIX),
                            )
                    todo = [m for m in members if not _member_complete(run, m, verify)]
                    fetched_before = report.members_fetched  # in earlier rounds of this call: fetched, not skipped
                    report.members_selected = len(members)
                    report.bytes_selected = sum(m.compressed_size for m in members)
                    report.zip_bytes = directory.size
                    report.members_skipped = max(0, len(members) - len(todo) - fetched_before)
                    _run_members(run, todo, workers, progress, len(members) - len(todo), len(members), transferred)
                except RemoteChanged:
                    if restart == MAX_RESTARTS:
                        raise
                    report.restarts += 1
                    continue
                finally:
                    if run is not None:
                        report.members_fetched += run.fetched
                        report.resumed_members += run.resumed_members
                        report.resumed_bytes += run.resumed_bytes
                    file_bytes += getattr(reader, "bytes_read", 0)
                    reader = None
                break
        finally:
            report.bytes_fetched = transferred()
            report.retries = stats.retries
    return _finish(report, started)


def fetch_scene(
    source: HypersimSource,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    **kwargs: object,
) -> FetchReport:
    """:func:`fetch_scene_members` from a source: its unpacked scene folder if it has one, else its zip."""
    unpacked = source.unpacked_scene_dir(scene)
    location = Location(path=unpacked) if unpacked is not None else source.scene_zip(scene)
    return fetch_scene_members(location, scene, raw_root, selection, **kwargs)  # type: ignore[arg-type]


# -- a scene from an unpacked local folder -------------------------------------------------------


def _copy_unpacked(
    src_dir: Path,
    scene: str,
    raw_root: Path,
    selection: MemberSelection,
    progress: Callable[[FetchProgress], None] | None,
    lock_timeout_s: float | None,
) -> FetchReport:
    """Hard-link (or copy) the selected files of an unpacked scene; verified by size only (no CRC available)."""
    started = time.monotonic()
    report = FetchReport(scene=scene, verified="size")
    files = sorted(p for p in src_dir.rglob("*") if p.is_file() and not p.name.startswith(".hypersim-"))
    chosen = [(p, f"{scene}/{p.relative_to(src_dir).as_posix()}") for p in files]
    chosen = [(p, name) for p, name in chosen if selection.matches(scene, name)]
    report.members_selected = len(chosen)
    report.bytes_selected = sum(p.stat().st_size for p, _ in chosen)
    scene_dir = raw_root / scene
    with scene_lock(scene_dir, lock_timeout_s), _saved_manifest(scene_dir, scene) as manifest:
        manifest.set_archive(str(src_dir), 0, None)
        for index, (src, name) in enumerate(chosen, 1):
            dest = _member_path(raw_root, scene, name)
            size = src.stat().st_size
            entry = {"size": size, "crc32": None, "compressed_size": size, "verified": "size"}
            if dest.exists() and (
                dest.samefile(src) or (manifest.entry(name) == entry and dest.stat().st_size == size)
            ):
                report.members_skipped += 1
                manifest.record(name, entry, dest)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + PART_SUFFIX)
            _unlink(tmp)
            try:
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
                    report.bytes_fetched += size
                if tmp.stat().st_size != size:
                    raise DownloadError(f"scene {scene}: copy of {src} has {tmp.stat().st_size} bytes, expected {size}")
                os.replace(tmp, dest)
            except OSError as exc:
                _unlink(tmp)
                if exc.errno in _DISK_FULL_ERRNOS:
                    raise DiskFull(tmp, _free_bytes(tmp.parent), exc) from exc
                raise
            manifest.record(name, entry, dest)
            report.members_fetched += 1
            if progress is not None:
                progress(FetchProgress(scene, name, index, len(chosen), report.bytes_fetched))
    return _finish(report, started)


# -- disk policy ---------------------------------------------------------------------------------------


def delete_scene_raw(raw_root: Path, scene: str, lock_timeout_s: float | None = 600.0) -> int:
    """Remove ``raw_root/<scene>`` (raw files, manifest, partial downloads); returns the bytes freed.

    Waits for a running download of the scene to finish (its lock), then moves
    the folder aside atomically before deleting it, so nobody sees half of it.
    """
    _check_scene_name(scene)
    raw_root = Path(raw_root)
    scene_dir = raw_root / scene
    if scene_dir.is_symlink():
        raise ValueError(f"{scene_dir} is a symlink; refusing to delete through it")
    if not scene_dir.exists():
        return 0
    with scene_lock(scene_dir, lock_timeout_s):
        doomed = raw_root / f".{scene}.deleting-{os.getpid()}-{threading.get_ident()}"
        os.replace(scene_dir, doomed)
    freed = sum(p.lstat().st_size for p in doomed.rglob("*") if p.is_file() and not p.is_symlink())
    shutil.rmtree(doomed)
    return freed


# -- metadata files -------------------------------------------------------------------------------------


class _HashingFile(_CountingFile):
    def __init__(self, f) -> None:  # noqa: ANN001
        super().__init__(f)
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return super().write(data)


def fetch_file(location: Location, dest: Path, sha256: str | None = None, retry: RetryConfig = RetryConfig()) -> int:
    """Download (or copy, for a local path) one file to ``dest`` via a temp file and rename; returns its bytes.

    With ``sha256`` the content must match, else :class:`ChecksumMismatch` and
    nothing is left at ``dest``. A file that changes on the server mid-download
    is fetched once more from the start.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PART_SUFFIX, dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            for attempt in range(2):
                raw.seek(0)
                raw.truncate()
                sink = _HashingFile(raw)
                if not location.is_remote:
                    if location.path is None or not Path(location.path).is_file():
                        raise FileNotFoundError(f"{location}: no such file")
                    with open(location.path, "rb") as src:
                        while chunk := src.read(_COPY_CHUNK):
                            sink.write(chunk)
                    break
                with HttpClient(retry) as client:
                    try:
                        client.get_range(location.url, 0, None, sink, etag=None)  # type: ignore[arg-type]
                        break
                    except RemoteChanged:
                        if attempt:
                            raise
            raw.flush()
            os.fsync(raw.fileno())
        actual = sink.sha.hexdigest()
        if sha256 is not None and actual != sha256.lower():
            raise ChecksumMismatch(dest, str(location), sha256.lower(), actual)
        os.replace(tmp, dest)
        return sink.written
    except OSError as exc:
        _unlink(tmp)
        if exc.errno in _DISK_FULL_ERRNOS:
            raise DiskFull(dest, _free_bytes(dest.parent), exc) from exc
        raise
    except BaseException:
        _unlink(tmp)
        raise


__all__ = [
    "ChecksumMismatch",
    "DiskFull",
    "DownloadError",
    "FetchProgress",
    "FetchReport",
    "MemberCorrupt",
    "SceneLocked",
    "SceneNotFound",
    "delete_scene_raw",
    "fetch_file",
    "fetch_scene",
    "fetch_scene_members",
    "scene_lock",
]
