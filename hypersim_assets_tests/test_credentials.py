"""Credentials in a source URL are sent (HTTP basic auth) and never written: the whole graph is
materialised in-process against a server that demands them, then every file under the data
root and the Dagster instance is searched for the password."""

from __future__ import annotations

import json
import sys

import dagster as dg
import pytest

from hypersim_assets.catalog.provenance import creation_record, redact
from hypersim_assets.definitions import defs
from hypersim_assets.download.errors import HttpStatusError
from hypersim_assets.download.source import HypersimSource, Location, redact_url
from hypersim_assets.materialize import materialize
from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.http_test_servers import BasicAuthGate

USER = "hypersim"
SECRET = "s3cret-Pa55word"


def test_redaction_hides_only_the_password() -> None:
    url = f"http://{USER}:{SECRET}@mirror.example:8080/hypersim?x=1"
    assert redact_url(url) == f"http://{USER}:***@mirror.example:8080/hypersim?x=1"
    assert redact_url("http://mirror.example/hypersim") == "http://mirror.example/hypersim"
    source = HypersimSource.parse(url)
    assert SECRET not in str(source) and SECRET not in repr(source) and SECRET not in source.redacted()
    assert source.base == url  # the real URL is kept for the requests themselves
    zip_loc = source.scene_zip("ai_001_001")
    assert SECRET not in str(zip_loc) and SECRET not in repr(zip_loc) and SECRET in zip_loc.url  # type: ignore[operator]
    record = creation_record("1.0", url, {"mirrors": [url], "nested": {"u": url}})
    assert SECRET not in json.dumps(record) and f"{USER}:***@" in record["source"]
    assert record["command"] == sys.argv[0].rsplit("/", 1)[-1]  # the program, not its arguments
    assert redact(["plain", 3]) == ["plain", 3]


@pytest.mark.e2e
@pytest.mark.parametrize("given_as", ["environment", "argument"])
def test_secret_is_sent_and_never_written(tmp_path, monkeypatch: pytest.MonkeyPatch, given_as: str) -> None:
    summary = write_synthetic_mirror(
        tmp_path / "mirror", MirrorSpec(scenes=1, cameras=1, frames=2, height=24, width=32)
    )
    data = tmp_path / "data"
    for var in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    with MirrorServer(tmp_path / "mirror") as server:
        port = int(server.url.rsplit(":", 1)[1])
        with BasicAuthGate(port, USER, SECRET) as gate:
            # Without the credentials the gate says no: the password really is needed.
            with pytest.raises(HttpStatusError, match="HTTP 401"):
                from hypersim_assets.download.file_fetch import fetch_file

                fetch_file(Location(url=f"{gate.url}/metadata_camera_parameters.csv"), tmp_path / "x.csv")
            source = f"http://{USER}:{SECRET}@127.0.0.1:{gate.port}"
            # Given in the environment, or as an argument (--source): the run config Dagster stores
            # then names the variable, which materialize sets in its own process, never the URL.
            monkeypatch.setenv("HYPERSIM_SOURCE", source if given_as == "environment" else "")
            (tmp_path / "instance").mkdir()
            with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
                result = materialize(
                    defs,
                    instance,
                    source=None if given_as == "environment" else source,
                    data_root=data,
                    all_scenes=True,
                    echo=lambda _: None,
                )
                assert result is not None
                mats = instance.fetch_materializations(dg.AssetKey("raw_scene"), limit=10).records
                assert len(mats) == len(summary.scenes)
                meta = mats[0].asset_materialization.metadata  # type: ignore[union-attr]
                assert f"{USER}:***@127.0.0.1:{gate.port}" in meta["source"].value
            assert gate.allowed > 0 and gate.denied == 1  # only the deliberate anonymous request was refused
    assert (data / "dataset" / "creation_meta.json").is_file()
    leaks = []
    for root in (data, tmp_path / "instance"):
        for path in root.rglob("*"):
            if path.is_file() and SECRET.encode() in path.read_bytes():
                leaks.append(str(path))
    assert leaks == []
    meta_text = (data / "dataset" / "creation_meta.json").read_text()
    assert f"{USER}:***@" in meta_text
