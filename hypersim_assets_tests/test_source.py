"""One source definition: parsing, upstream pins, per-scene locations, env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypersim_assets.common.layout import CAMERA_PARAMETERS_CSV, METADATA_FILES, SPLIT_CSV
from hypersim_assets.download.source import HypersimSource, data_root_from_env


def test_upstream_is_the_default_and_pins_every_metadata_file(monkeypatch):
    monkeypatch.delenv("HYPERSIM_SOURCE", raising=False)
    source = HypersimSource.from_env()
    assert source.is_upstream and source.is_remote
    for name in METADATA_FILES:
        loc = source.metadata(name)
        assert loc.url.startswith("https://raw.githubusercontent.com/apple/ml-hypersim/") and loc.url.endswith(name)
        assert len(loc.sha256) == 64
    assert source.scene_zip("ai_001_001").url == (
        "https://docs-assets.developer.apple.com/ml-research/datasets/hypersim/v1/scenes/ai_001_001.zip"
    )


@pytest.mark.parametrize("text", ["http://127.0.0.1:8000/mirror/", "https://example.org/h"])
def test_http_source(text):
    source = HypersimSource.parse(text)
    base = text.rstrip("/")
    assert source.metadata(SPLIT_CSV).url == f"{base}/{SPLIT_CSV}" and source.metadata(SPLIT_CSV).sha256 is None
    assert source.scene_zip("ai_002_003").url == f"{base}/scenes/ai_002_003.zip"
    assert source.unpacked_scene_dir("ai_002_003") is None


def test_directory_and_file_url_sources_are_the_same(tmp_path):
    (tmp_path / "ai_003_001" / "_detail").mkdir(parents=True)
    by_dir = HypersimSource.parse(str(tmp_path))
    by_url = HypersimSource.parse(tmp_path.as_uri())
    assert by_dir == by_url and not by_dir.is_remote
    assert by_dir.metadata(CAMERA_PARAMETERS_CSV).path == tmp_path / CAMERA_PARAMETERS_CSV
    assert by_dir.scene_zip("ai_003_001").path == tmp_path / "scenes" / "ai_003_001.zip"
    assert by_dir.unpacked_scene_dir("ai_003_001") == tmp_path / "ai_003_001"
    assert by_dir.unpacked_scene_dir("ai_003_002") is None


def test_unsupported_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="ftp"):
        HypersimSource.parse("ftp://host/hypersim")


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.delenv("HYPERSIM_DATA_ROOT", raising=False)
    assert data_root_from_env() == Path("./hypersim-data")
    monkeypatch.setenv("HYPERSIM_DATA_ROOT", str(tmp_path))
    assert data_root_from_env() == tmp_path
