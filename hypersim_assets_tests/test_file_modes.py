"""Group-shared roots: everything a materialisation writes is created ``0666 & ~umask`` (files)
and ``0777 & ~umask`` (folders). The whole graph runs in a child process under ``umask 002``
(a fresh process, so its conversion workers inherit that umask too)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer

UMASK = 0o002


@pytest.mark.e2e
def test_materialised_root_honours_umask_002(tmp_path: Path) -> None:
    write_synthetic_mirror(tmp_path / "mirror", MirrorSpec(scenes=1, cameras=1, frames=2, height=24, width=32))
    data = tmp_path / "data"
    (tmp_path / "instance").mkdir()
    with MirrorServer(tmp_path / "mirror") as server:
        code = (
            "import os\n"
            f"os.umask({UMASK})\n"
            "from pathlib import Path\n"
            "import dagster as dg\n"
            "from hypersim_assets.definitions import defs\n"
            "from hypersim_assets.materialize import materialize\n"
            f"with dg.instance_for_test(temp_dir={str(tmp_path / 'instance')!r}) as instance:\n"
            f"    materialize(defs, instance, source={server.url!r}, data_root=Path({str(data)!r}),"
            " all_scenes=True, echo=lambda _: None)\n"
        )
        env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wrong = []
    files = 0
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = (0o777 if path.is_dir() else 0o666) & ~UMASK
        files += path.is_file()
        if mode != want:
            wrong.append(f"{oct(mode)} {path.relative_to(data)}")
    assert files > 20  # raw members, manifest, metadata CSVs, PNGs, index, views, provenance
    assert wrong == []
