"""The command line under hostile input: each user mistake ends with a clear message on
stderr and exit code 2 (usage or configuration) or 1 (a failed run), never a traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from hypersim_assets.cli import build_parser, main

SMALL = ["--scenes", "1", "--cameras", "1", "--frames", "1", "--height", "24", "--width", "32"]


def _exit_code(argv: list[str]) -> int:
    """``main(argv)``'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--workers", "0"), ("--workers", "-3"), ("--seed", "-5"), ("--scenes", "0"), ("--width", "-1")],
)
def test_synth_mirror_rejects_out_of_range_numbers_as_usage_errors(flag, value, tmp_path, capsys):
    out = tmp_path / "mirror"
    assert _exit_code(["synth-mirror", str(out), *SMALL, flag, value]) == 2  # the last --flag wins
    err = capsys.readouterr().err
    assert flag in err and value in err and "Traceback" not in err
    assert not out.exists()


def test_synth_mirror_into_a_file_names_the_path(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    assert _exit_code(["synth-mirror", str(target), *SMALL, "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert str(target) in err and "Not a directory" in err
    assert target.read_text() == "not a directory"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--port", "70000"), ("--port", "-1"), ("--rtt-ms", "nan"), ("--rtt-ms", "-1"), ("--link-mbps", "inf")],
)
def test_serve_rejects_impossible_numbers_as_usage_errors(flag, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # parsing only: a server that did start would serve forever
        build_parser().parse_args(["serve", str(tmp_path), flag, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err and "Traceback" not in err


def test_serve_a_missing_directory_is_a_usage_error_naming_it(tmp_path, capsys):
    missing = tmp_path / "no-such-mirror"
    assert _exit_code(["serve", str(missing), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err


def test_serve_on_a_taken_port_says_which_and_why(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert _exit_code(["serve", str(tmp_path), "--port", port]) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "in use" in err and "Traceback" not in err


def test_serve_stopped_by_sigint_exits_130(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypersim_assets.cli", "serve", str(tmp_path), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert "serving" in proc.stdout.readline()  # listening: the signal now ends a running server
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 128 + signal.SIGINT
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.mark.parametrize(
    ("source", "why"),
    [("ftp://example.org/hypersim", "unsupported source scheme 'ftp'"), ("http://", "names no host")],
)
def test_materialize_an_unreadable_source_fails_before_any_run(source, why, tmp_path, monkeypatch, capsys):
    """It was retried as transient (7 s, 82 s, 226 s...) or read as a local path ``http:/``."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    data = tmp_path / "data"
    assert _exit_code(["materialize", "--source", source, "--data-root", str(data)]) == 2
    err = capsys.readouterr().err
    assert "resources.hypersim.config.source" in err and why in err and "Traceback" not in err
    assert not data.exists()  # no instance, no run


def test_library_materialize_refuses_an_unreadable_source_at_once(tmp_path):
    import dagster as dg

    from hypersim_assets.common.errors import is_permanent
    from hypersim_assets.definitions import defs
    from hypersim_assets.download.source import HypersimSource
    from hypersim_assets.materialize import MaterializeError, materialize

    with pytest.raises(Exception) as parsed:
        HypersimSource.parse("ftp://example.org/hypersim")
    assert is_permanent(parsed.value)  # a step that meets it fails at once, without retries
    with dg.instance_for_test() as instance:
        with pytest.raises(MaterializeError, match="unsupported source scheme"):
            materialize(defs, instance, source="ftp://example.org/hypersim", data_root=tmp_path, scenes=["ai_001_001"])
        assert not instance.get_runs()


@pytest.mark.parametrize("home", ["a-file", "missing", "relative"])
def test_materialize_with_a_bad_dagster_home_says_so(home, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    value = "relative-home" if home == "relative" else str(tmp_path / home)
    monkeypatch.setenv("DAGSTER_HOME", value)
    assert _exit_code(["materialize", "--data-root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert f"DAGSTER_HOME={value}" in err and "Traceback" not in err


def test_materialize_into_a_data_root_that_is_a_file_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    root = tmp_path / "a-file"
    root.write_text("kept")
    assert _exit_code(["materialize", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert str(root) in err and "Not a directory" in err and "Traceback" not in err
    assert root.read_text() == "kept"


@pytest.mark.parametrize(
    "argv",
    [
        ["materialize", "--source", ""],
        ["materialize", "--data-root", " "],
        ["materialize", "--scene", ""],
        ["materialize", "--config", ""],
        ["synth-mirror", ""],
        ["serve", ""],
        ["demo", "--workdir", ""],
    ],
    ids=["source", "data-root", "scene", "config", "synth-mirror-dir", "serve-dir", "demo-workdir"],
)
def test_empty_values_are_usage_errors(argv, capsys):
    """``--source ""`` (an unset shell variable) meant upstream, an empty path the current directory."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert "must not be empty" in capsys.readouterr().err


def _materialize_jobs():
    from hypersim_assets.cli import MATERIALIZE_JOBS
    from hypersim_assets.definitions import defs

    return [defs.resolve_job_def(name) for name in MATERIALIZE_JOBS]


def test_an_unset_env_variable_in_the_config_is_named_without_a_stack_trace(monkeypatch):
    from hypersim_assets.run_config import RunConfigError, validate_run_config

    monkeypatch.delenv("HYPERSIM_TEST_UNSET", raising=False)
    config = {"resources": {"hypersim": {"config": {"data_root": {"env": "HYPERSIM_TEST_UNSET"}}}}}
    with pytest.raises(RunConfigError) as rejected:
        validate_run_config(config, _materialize_jobs())
    message = str(rejected.value)
    assert "resources.hypersim.config.data_root: environment variable HYPERSIM_TEST_UNSET is not set" in message
    assert "Stack Trace" not in message and "File " not in message


def test_an_unknown_key_is_one_short_line():
    from hypersim_assets.run_config import RunConfigError, validate_run_config

    with pytest.raises(RunConfigError) as rejected:
        validate_run_config({"extra": 1, "resources": {"bogus": {}}}, _materialize_jobs())
    lines = str(rejected.value).splitlines()[1:]
    assert len(lines) == 2  # one per mistake, not one per job
    assert all(len(line) < 300 for line in lines), lines  # no schema dump
    assert '"extra"' in lines[0] and '"bogus"' in lines[1]


@pytest.mark.e2e
def test_ctrl_c_outside_a_run_exits_130_without_a_traceback(tmp_path):
    """SIGINT while the command waits on its --config (a FIFO nobody writes): no run is in progress."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypersim_assets.cli",
            "materialize",
            "--data-root",
            str(tmp_path),
            "--config",
            str(fifo),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        with open(fifo, "w"):  # returns once the command opened the FIFO to read it
            proc.send_signal(signal.SIGINT)
            err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode in (128 + signal.SIGINT, -signal.SIGINT)  # a shell sees 130 either way
    assert "Traceback" not in err and "interrupted" in err


def test_a_malformed_subsamples_variable_is_a_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HYPERSIM_SUBSAMPLES", "abc")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert _exit_code(["materialize", "--data-root", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "HYPERSIM_SUBSAMPLES" in err and "'abc'" in err and "Traceback" not in err


def test_a_subsample_too_large_to_index_is_a_usage_error(capsys):
    """10**21 reached the views step, which failed with 'OverflowError: Python int too large'."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["materialize", "--additional-subsamples", str(10**21)])
    assert exited.value.code == 2
    assert "--additional-subsamples" in capsys.readouterr().err


def test_a_relative_source_directory_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    """``--source m1`` was stored as ``m1``: a run re-executed from the UI (another working
    directory) read another folder, or none."""
    from hypersim_assets.run_config import RunOptions, build_run_config

    monkeypatch.chdir(tmp_path)
    for text in ("mirror", "./mirror/", f"file://{tmp_path}/mirror"):
        config = build_run_config({}, RunOptions(source=text, data_root="data"))
        assert config["resources"]["hypersim"]["config"]["source"] == str(tmp_path / "mirror"), text
        file_config = {"resources": {"hypersim": {"config": {"source": text}}}}
        assert build_run_config(file_config, RunOptions())["resources"]["hypersim"]["config"]["source"] == str(
            tmp_path / "mirror"
        )
    upstream = build_run_config({}, RunOptions(source="upstream", data_root="data"))
    assert upstream["resources"]["hypersim"]["config"]["source"] == "upstream"


@pytest.mark.e2e
def test_a_scene_named_twice_is_materialised_once(tmp_path):
    import dagster as dg

    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import materialize
    from hypersim_assets.synthetic.mirror import MirrorSpec, write_synthetic_mirror

    mirror = tmp_path / "mirror"
    scene = write_synthetic_mirror(mirror, MirrorSpec(scenes=1, cameras=1, frames=1, height=24, width=32)).scenes[0]
    with dg.instance_for_test() as instance:
        summary = materialize(defs, instance, source=str(mirror), data_root=tmp_path / "data", scenes=[scene, scene])
        assert summary.scenes == [scene]
        scene_runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition") == scene]
        assert len(scene_runs) == 1
        again = materialize(defs, instance, source=str(mirror), data_root=tmp_path / "data", scenes=scene)
        assert again.scenes == [scene]  # a bare name is one scene, not one per character


def test_a_config_file_that_is_not_text_is_a_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = tmp_path / "run.yaml"
    config.write_bytes(b"\xff\xfe\x00binary")
    assert _exit_code(["materialize", "--data-root", str(tmp_path / "data"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "UTF-8" in err and "Traceback" not in err


def test_a_none_section_is_one_short_line():
    from hypersim_assets.run_config import RunConfigError, validate_run_config

    with pytest.raises(RunConfigError) as rejected:
        validate_run_config({"resources": None}, _materialize_jobs())
    (line,) = str(rejected.value).splitlines()[1:]
    assert "root:resources must not be None" in line and len(line) < 300, line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"resources": {"catalog": {"config": {"subsamples": "0,x"}}}}, "resources.catalog.config.subsamples"),
        ({"resources": {"catalog": {"config": {"subsamples": f"1,{10**24}"}}}}, "must be at most 2147483647"),
        ({"loggers": {"console": {"config": {"log_level": "NOPE"}}}}, "loggers.console.config.log_level"),
    ],
    ids=["subsamples-malformed", "subsamples-huge", "log-level"],
)
def test_values_a_run_would_fail_on_are_rejected_before_any_run(config, expected, tmp_path):
    """They failed a run: the subsamples in the views step, after every scene (exit 1, a bare
    OverflowError or a message naming HYPERSIM_SUBSAMPLES); the log level as the run started."""
    import dagster as dg

    from hypersim_assets.definitions import defs
    from hypersim_assets.materialize import MaterializeError, materialize
    from hypersim_assets.run_config import RunConfigError, RunOptions, build_run_config, validate_run_config

    with pytest.raises(RunConfigError, match=re.escape(expected)):
        validate_run_config(config, _materialize_jobs())
    run_config = build_run_config(config, RunOptions(source=str(tmp_path), data_root=str(tmp_path / "data")))
    with dg.instance_for_test() as instance:
        with pytest.raises(MaterializeError, match=re.escape(expected)):
            materialize(defs, instance, run_config=run_config)
        assert not instance.get_runs()


def test_demo_in_a_workdir_that_is_a_file_names_it(tmp_path, capsys):
    workdir = tmp_path / "a-file"
    workdir.write_text("kept")
    assert _exit_code(["demo", "--workdir", str(workdir), *SMALL]) == 1
    err = capsys.readouterr().err
    assert str(workdir) in err and "Not a directory" in err and "Traceback" not in err
    assert workdir.read_text() == "kept"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_local_source_that_is_no_directory_fails_before_any_run(kind, tmp_path, monkeypatch, capsys):
    """It failed the metadata run with '<source>/metadata_images_split_scene_v1.csv: no such file'."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    source = tmp_path / "mirror"
    if kind == "file":
        source.write_text("")
    data = tmp_path / "data"
    assert _exit_code(["materialize", "--source", str(source), "--data-root", str(data), "--scene", "ai_001_001"]) == 2
    err = capsys.readouterr().err
    assert f"resources.hypersim.config.source: {source}" in err and "Traceback" not in err
    assert not data.exists()


def test_a_worker_count_no_machine_here_could_run_is_rejected_before_any_run():
    """--n-processes 100000 was accepted and the warm pool began starting 100000 processes."""
    from hypersim_assets.run_config import RunConfigError, max_conversion_workers, validate_run_config

    too_many = max_conversion_workers() + 1
    config = {"resources": {"conversion": {"config": {"workers": too_many}}}}
    with pytest.raises(RunConfigError, match=f"resources.conversion.config.workers: .*got {too_many}"):
        validate_run_config(config, _materialize_jobs())
    validate_run_config({"resources": {"conversion": {"config": {"workers": os.cpu_count()}}}}, _materialize_jobs())
