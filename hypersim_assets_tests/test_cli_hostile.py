"""The command line under hostile input: each user mistake ends with a clear message on
stderr and exit code 2 (usage or configuration) or 1 (a failed run), never a traceback."""

from __future__ import annotations

import pytest

from hypersim_assets.cli import main

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
