"""The per-scene manifest: what a save makes durable, and that download threads never wait on each other's saves."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from hypersim_assets.download.files import read_json
from hypersim_assets.download.manifest import MANIFEST_NAME, Manifest
from hypersim_assets_tests.scene_zips import SCENE


def test_an_unforced_save_never_waits_for_another_threads_save(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / MANIFEST_NAME, SCENE)
    # Opening a FIFO for reading blocks until a writer opens it: a save that fsyncs it hangs until then.
    slow = tmp_path / "slow.hdf5"
    os.mkfifo(slow)
    manifest.record("slow.hdf5", {"size": 0}, slow)
    saver = threading.Thread(target=manifest.save, name="forced-save")
    saver.start()
    time.sleep(0.2)
    assert saver.is_alive(), "the forced save should be held by the FIFO"
    fast = tmp_path / "fast.hdf5"
    fast.write_bytes(b"verified member")
    recorder = threading.Thread(target=manifest.record, args=("fast.hdf5", {"size": 15}, fast), name="record")
    recorder.start()
    recorder.join(5)
    try:
        assert not recorder.is_alive(), "record() waited for another thread's save"
    finally:
        os.close(os.open(slow, os.O_WRONLY))  # release the held save
        saver.join(10)
        recorder.join(10)
    assert not saver.is_alive()
    # The FIFO cannot be fsynced: it is never listed. The skipped member stayed pending for the next save.
    manifest.save()
    assert read_json(tmp_path / MANIFEST_NAME)["members"] == {"fast.hdf5": {"size": 15}}
