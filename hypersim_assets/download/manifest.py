"""Per-scene bookkeeping under ``raw_root/<scene>/``: the manifest of verified members
(``.hypersim-manifest.json``), the download lock (``.hypersim-download.lock``, ``flock``)
and the rule for which member names may be written where."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from hypersim_assets.common.file_lock import flock_until
from hypersim_assets.common.layout import SCENE_NAME_RE
from hypersim_assets.download.errors import InvalidSceneName, SceneLocked, UnsafeMember
from hypersim_assets.download.files import file_crc32, fsync_path, read_json, write_json_atomic
from hypersim_assets.download.remote_zip import ZipMember

MANIFEST_NAME = ".hypersim-manifest.json"
LOCK_NAME = ".hypersim-download.lock"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
MANIFEST_VERSION = 1
VerifyMode = Literal["crc", "size"]
VERIFY_MODES: tuple[str, ...] = ("crc", "size")
_MANIFEST_SAVE_INTERVAL_S = 1.0


def check_scene_name(scene: str) -> None:
    """Raise :class:`InvalidSceneName` unless ``scene`` is ``ai_NNN_NNN`` with ASCII digits."""
    if not SCENE_NAME_RE.fullmatch(scene):
        raise InvalidSceneName(f"scene name {scene!r} is not of the form ai_NNN_NNN (ASCII digits)")


_DRIVE = re.compile(r"^[A-Za-z]:")


def member_name_problem(name: str) -> str | None:
    """Why writing zip member ``name`` below a folder would be unsafe, or None when it is a plain relative path.

    Refused: empty names, absolute paths, backslashes, drive letters, NUL bytes and
    ``.``/``..``/empty path segments (a trailing ``/`` marks a directory entry and is allowed).
    """
    if not name:
        return "empty name"
    if name.startswith("/"):
        return "absolute path"
    if "\\" in name:
        return "backslash in name"
    if _DRIVE.match(name):
        return "drive letter"
    if "\0" in name:
        return "NUL byte in name"
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        return "'..' segment"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' segment"
    return None


def check_archive_members(scene: str, archive: str, members: Iterable[ZipMember]) -> None:
    """Refuse an archive (:class:`UnsafeMember`) with an unsafe name, a symlink entry, or a name listed twice.

    Checked over every entry before anything is written, so a hostile archive leaves nothing behind.
    """
    seen: set[str] = set()
    for member in members:
        problem = member_name_problem(member.name)
        if problem is None and member.is_symlink:
            problem = "symlink entry"
        if problem is None and member.name in seen:
            problem = "listed twice in the central directory"
        if problem is not None:
            raise UnsafeMember(
                f"scene {scene}: {archive}: refusing member {member.name!r} ({problem}); nothing written"
            )
        seen.add(member.name)


def member_path(raw_root: Path, scene: str, name: str) -> Path:
    """``raw_root/<name>`` after checking that ``name`` is a safe relative path below ``<scene>/``."""
    problem = member_name_problem(name)
    if problem is None and (name.endswith("/") or name.split("/")[0] != scene):
        problem = f"not a file below {scene}/"
    if problem is not None:
        raise UnsafeMember(f"scene {scene}: refusing member name {name!r} ({problem})")
    return raw_root.joinpath(*name.split("/"))


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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not flock_until(fd, deadline):
                raise SceneLocked(f"{lock_path} is held by another download of this scene for more than {timeout_s} s")
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


class Manifest:
    """The per-scene record of verified members, saved atomically at most once per interval unless forced.

    A recorded member is *pending* until the next save, which first fsyncs its file
    (and folder): the saved manifest never lists a file that a power cut could lose.
    Files in place but not listed are re-verified by CRC before being trusted.
    """

    def __init__(self, path: Path, scene: str) -> None:
        self.path = path
        data = read_json(path) or {}
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
        """Make the pending members durable (fsync files and folders) and write the manifest atomically.

        An unforced save is skipped within the save interval and while another thread saves:
        a download thread never waits on another's fsync (its member stays pending for the next save).
        """
        if not self._save_lock.acquire(blocking=force):
            return
        try:
            self._save_pending(force)
        finally:
            self._save_lock.release()

    def _save_pending(self, force: bool) -> None:
        with self._lock:
            if not (self._dirty or self._pending):
                return
            if not force and time.monotonic() - self._saved_at < _MANIFEST_SAVE_INTERVAL_S:
                return
            pending, self._pending = self._pending, {}
        durable = {}
        for name, (entry, path) in pending.items():
            try:
                fsync_path(path)
            except OSError:
                continue  # not durable, not listed: a later run re-verifies or refetches it
            durable[name] = entry
        for folder in {path.parent for _, path in pending.values()}:
            with contextlib.suppress(OSError):
                fsync_path(folder)
        with self._lock:
            self.data["members"].update(durable)
            snapshot = json.loads(json.dumps(self.data))
            self._dirty = False
            self._saved_at = time.monotonic()
        write_json_atomic(self.path, snapshot)


def manifest_fingerprint(raw_root: Path, scene: str) -> str:
    """A short hash of the scene's verified members (names, sizes, CRCs): the raw scene's data version.

    Unchanged members give the same fingerprint, whichever run fetched them.
    """
    data = read_json(Path(raw_root) / scene / MANIFEST_NAME) or {}
    members = data.get("members", {})
    digest = hashlib.sha256()
    for name in sorted(members):
        entry = members[name]
        digest.update(f"{name}\0{entry.get('size')}\0{entry.get('crc32')}\n".encode())
    return digest.hexdigest()[:24]


@contextlib.contextmanager
def saved_manifest(scene_dir: Path, scene: str) -> Iterator[Manifest]:
    """The scene's manifest, saved when the block ends, also when it fails: what was
    verified is kept, but a failing save (e.g. the disk is full) never hides the cause."""
    manifest = Manifest(scene_dir / MANIFEST_NAME, scene)
    try:
        yield manifest
    except BaseException:
        with contextlib.suppress(OSError):
            manifest.save(force=True)
        raise
    manifest.save(force=True)


def manifest_entry(member: ZipMember) -> dict:
    return {
        "size": member.file_size,
        "crc32": member.crc32,
        "compressed_size": member.compressed_size,
        "verified": "crc32",
    }


def parse_verify_mode(mode: str | bool) -> VerifyMode:
    """``"crc"`` or ``"size"`` (``True``/``False`` mean the same); raises ValueError for anything else."""
    if isinstance(mode, bool):
        return "crc" if mode else "size"
    if mode not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {', '.join(VERIFY_MODES)}, not {mode!r}")
    return mode  # type: ignore[return-value]


def verify_scene_members(raw_root: Path, scene: str, mode: VerifyMode | str = "crc") -> list[str]:
    """Problems of ``raw_root/<scene>``'s members against its manifest; an empty list means all is well.

    Each problem names the member: missing, another size, or (``mode="crc"``, for members the
    manifest records a CRC-32 for) another CRC-32. ``"size"`` only stats the files; ``"crc"``
    reads every byte. A scene without a manifest gives one problem saying so.
    """
    check_crc = parse_verify_mode(mode) == "crc"
    raw_root = Path(raw_root)
    data = read_json(raw_root / scene / MANIFEST_NAME)
    if data is None or data.get("scene") != scene:
        return [f"scene {scene}: no manifest at {raw_root / scene / MANIFEST_NAME}"]
    problems = []
    for name, entry in sorted(data.get("members", {}).items()):
        try:
            path = member_path(raw_root, scene, name)
            size = path.stat().st_size
        except (FileNotFoundError, UnsafeMember) as exc:
            problems.append(f"{name}: missing ({exc.__class__.__name__})")
            continue
        if size != entry.get("size"):
            problems.append(f"{name}: {size} bytes, manifest says {entry.get('size')}")
        elif check_crc and entry.get("crc32") is not None:
            crc, _ = file_crc32(path)
            if crc != entry["crc32"]:
                problems.append(f"{name}: CRC-32 {crc:08x}, manifest says {entry['crc32']:08x}")
    return problems
