"""The mirror's scene zip writer: members in the order added, with their folder entries, fixed
timestamps and Unix modes, written through a temp file and moved into place on success, so a
zip's bytes depend only on what was added.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from hypersim_assets.common.atomic_files import atomic_path

_ZIP_DATE = (2020, 6, 1, 0, 0, 0)  # fixed member timestamps keep the bytes a function of the seed


class SceneZip:
    """A zip written through a temp file and moved into place on success; members get their folder
    entries first, fixed timestamps and Unix modes, so the bytes depend only on what is added."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dirs: set[str] = set()

    def __enter__(self) -> SceneZip:  # noqa: PYI034 (Self needs Python 3.11; the project supports 3.10)
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        self.raw = open(self.tmp, "wb")
        self.zf = zipfile.ZipFile(self.raw, "w")
        return self

    def add(self, name: str, data: bytes, deflate: bool) -> None:
        """Append member ``name`` (DEFLATED if ``deflate`` else STORED), after any missing folder entries."""
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i]) + "/"
            if folder not in self.dirs:
                self.dirs.add(folder)
                info = zipfile.ZipInfo(folder, date_time=_ZIP_DATE)
                info.create_system = 3
                info.external_attr = (0o40755 << 16) | 0x10
                self.zf.writestr(info, b"")
        info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        self.zf.writestr(info, data, compresslevel=6 if deflate else None)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.zf.close()
        finally:
            self.raw.close()
        # atomic_path fsyncs and renames on success, removes the temp file on failure.
        self._atomic.__exit__(exc_type, exc, tb)
