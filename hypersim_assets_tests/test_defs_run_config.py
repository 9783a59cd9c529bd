"""Launchpad run config a user gets wrong: the run is refused, or fails at once without
retries, with a message that names the resource field and what is wrong with it."""

from __future__ import annotations

import dagster as dg
import pytest

from hypersim_assets.definitions import defs
from hypersim_assets.synthetic.mirror_server import MirrorServer
from hypersim_assets_tests.conftest import materialize_metadata
from hypersim_assets_tests.conftest import resource_config as _config
from hypersim_assets_tests.conftest import run_job as _run

METADATA = [dg.AssetKey("hypersim_metadata")]


def _failure_text(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "no step failed"
    data = failures[0].step_failure_data
    user = data.user_failure_data
    return (user.description if user is not None and user.description else "") + (data.error.message or "")


def _retries(result) -> list:
    return [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


@pytest.mark.parametrize(
    ("resource", "field", "value"),
    [("conversion", "png_compression", "ultra"), ("download", "members", "some")],
)
def test_an_unknown_choice_is_refused_at_launch_naming_its_field(resource, field, value):
    # Before: accepted at launch, then the step failed, retried 3 times over minutes, and the
    # run ended with "Exceeded max_retries of 3".
    job = defs.resolve_job_def("hypersim_scene_job")
    config = {"resources": {resource: {"config": {field: value}}}}
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        dg.validate_run_config(job, config)
    assert f"resources:{resource}:config:{field}" in str(raised.value)
    for good in ("fast", "default", "small") if field == "png_compression" else ("conversion", "all"):
        dg.validate_run_config(job, {"resources": {resource: {"config": {field: good}}}})


def test_an_unsupported_source_scheme_fails_at_once_naming_the_field(small_mirror, tmp_path):
    with dg.instance_for_test() as instance:
        result = _run(
            "hypersim_catalog_job",
            _config("ftp://127.0.0.1/hypersim", tmp_path / "data"),
            instance,
            asset_selection=METADATA,
        )
    assert not result.success
    text = _failure_text(result)
    assert "resources.hypersim.config.source" in text and "ftp" in text, text
    assert not _retries(result)


def test_member_globs_mode_without_globs_fails_at_once_naming_the_field(small_mirror, tmp_path):
    mirror, summary = small_mirror
    scene = summary.scenes[0]
    with dg.instance_for_test() as instance, MirrorServer(mirror) as server:
        config = _config(server.url, tmp_path / "data", download={"members": "globs"})
        materialize_metadata(instance, config)
        result = _run("hypersim_scene_job", config, instance, partition_key=scene)
    assert not result.success
    text = _failure_text(result)
    assert "resources.download.config" in text and "glob" in text, text
    assert not _retries(result)


def test_a_data_root_that_is_a_file_fails_at_once_naming_the_field(small_mirror, tmp_path):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file, not a folder")
    with dg.instance_for_test() as instance:
        result = _run(
            "hypersim_catalog_job", _config(str(small_mirror[0]), not_a_dir), instance, asset_selection=METADATA
        )
    assert not result.success
    text = _failure_text(result)
    assert "resources.hypersim.config.data_root" in text and str(not_a_dir) in text, text
    assert "not a directory" in text, text
    assert not _retries(result)


def test_bad_subsamples_in_the_launchpad_name_the_resource_field(small_mirror, tmp_path):
    # Before: "subsample views: setting subsamples: HYPERSIM_SUBSAMPLES values must be >= 1", naming
    # an environment variable the user never set.
    config = _config(str(small_mirror[0]), tmp_path / "data", catalog={"subsamples": "0,10"})
    with dg.instance_for_test() as instance:
        materialize_metadata(instance, config)
        result = _run("hypersim_catalog_job", config, instance, asset_selection=[dg.AssetKey("subsample_views")])
    assert not result.success
    text = _failure_text(result)
    assert "resources.catalog.config.subsamples" in text and "'0,10'" in text, text
    assert not _retries(result)
