"""Our central-directory parser and member fetch versus the standard library's ``zipfile``
over a seekable ranged reader, on one synthetic scene zip served on loopback, in one run.

Prints, for each way, the HTTP requests and bytes off the wire to (1) list the members and
(2) bring the conversion's members to disk, and the ratios. The seekable reader answers
each ``read`` with one Range GET, buffered in ``--buffer-kib`` blocks (``io.BufferedReader``),
which is how a ``zipfile``-over-HTTP adapter is usually written.

    python benchmarks/bench_central_directory.py [--frames 12] [--cameras 2] [--buffer-kib 64]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import zipfile
from pathlib import Path

from hypersim_assets.common.layout import MemberSelection
from hypersim_assets.download.http_client import HttpClient, RetryConfig
from hypersim_assets.download.remote_zip import HttpRangeReader, read_central_directory
from hypersim_assets.download.scene_fetch import fetch_scene_members
from hypersim_assets.download.source import Location
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer


class RangedFile(io.RawIOBase):
    """A read-only, seekable file whose every ``readinto`` is one HTTP Range GET."""

    def __init__(self, client: HttpClient, url: str) -> None:
        self.client, self.url = client, url
        self.size = client.head(url).size or 0
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf: memoryview) -> int:
        n = min(len(buf), self.size - self.pos)
        if n <= 0:
            return 0
        out = io.BytesIO()
        self.client.get_range(self.url, self.pos, n, out)
        data = out.getvalue()
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


def measure(server: MirrorServer) -> tuple[int, int]:
    """(requests, body bytes) the server answered since its log was last reset."""
    return len(server.requests), sum(r.body_bytes for r in server.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--buffer-kib", type=int, default=64)
    args = parser.parse_args()
    selection = MemberSelection()
    with tempfile.TemporaryDirectory(prefix="bench-cd-") as tmp:
        root = Path(tmp) / "mirror"
        write_synthetic_mirror(root, MirrorSpec(scenes=1, cameras=args.cameras, frames=args.frames))
        zip_path = sorted((root / "scenes").glob("*.zip"))[0]
        scene = zip_path.stem
        with zipfile.ZipFile(zip_path) as zf:
            entries = len(zf.infolist())
        print(f"scene {scene}: {zip_path.stat().st_size} bytes, {entries} members")
        with MirrorServer(root) as server, HttpClient(RetryConfig()) as client:
            url = f"{server.url}/scenes/{scene}.zip"
            rows = {}
            # Ours: listing, then the selected members.
            server.reset_log()
            read_central_directory(HttpRangeReader(client, url))
            rows["ours: list"] = measure(server)
            server.reset_log()
            fetch_scene_members(Location(url=url), scene, Path(tmp) / "ours", selection)
            rows["ours: list + fetch selected"] = measure(server)
            # zipfile over a seekable ranged reader.
            server.reset_log()
            raw = RangedFile(client, url)
            with zipfile.ZipFile(io.BufferedReader(raw, args.buffer_kib * 1024)) as zf:
                rows["zipfile: list"] = measure(server)
                out = Path(tmp) / "zipfile"
                for info in zf.infolist():
                    if selection.matches(scene, info.filename) and not info.is_dir():
                        dest = out / info.filename
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        dest.write_bytes(zf.read(info))
            rows["zipfile: list + fetch selected"] = measure(server)
        for name, (requests, body) in rows.items():
            print(f"{name:32s} {requests:6d} requests {body:12d} bytes")
        for what in ("list", "list + fetch selected"):
            ours, theirs = rows[f"ours: {what}"], rows[f"zipfile: {what}"]
            print(
                f"zipfile / ours, {what}: requests x{theirs[0] / max(1, ours[0]):.2f}, bytes x{theirs[1] / max(1, ours[1]):.2f}"
            )


if __name__ == "__main__":
    main()
