"""The run config the command line hands to every run it launches: a launchpad-format
YAML file (``--config``) overlaid with the command's options, validated against the
jobs' run config schema before any run starts."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pydantic
import yaml

from hypersim_assets.catalog.subsample_views import ENV_SUBSAMPLES, parse_subsamples
from hypersim_assets.defs.config_values import bound_problems, config_path
from hypersim_assets.defs.resources import ConversionResource
from hypersim_assets.download.errors import InvalidSource
from hypersim_assets.download.source import ENV_SOURCE, UPSTREAM, HypersimSource, data_root_from_env, redact_url

# Top-level sections of a launchpad run config that the command line passes on. ``execution``
# is dropped: the command runs every step in its own process, whatever the file says.
IGNORED_SECTIONS = ("execution",)


def max_conversion_workers() -> int:
    """The most conversion worker processes a run of this machine may ask for (the conversion
    resource's bound, which its steps check too)."""
    return int(ConversionResource.BOUNDS["workers"].maximum)


# Python's level names, which Dagster's console logger accepts.
LOG_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG")


class RunConfigError(ValueError):
    """A run config file that cannot be read, or a run config the jobs' schema rejects."""


@dataclass(frozen=True)
class RunOptions:
    """The command line's run options; ``None`` means "not given" (the file, then the default, decides).

    ``additional_subsamples`` are the reference's every-N-th values besides 1 (the full
    split lists are always written); ``workers`` is conversion worker processes per scene
    (0 = one per core).
    """

    source: str | None = None
    data_root: str | None = None
    additional_subsamples: tuple[int, ...] | None = None
    workers: int | None = None
    tilt_shift: bool | None = None
    png_compression: str | None = None
    members: str | None = None


def load_run_config_file(path: Path) -> dict[str, Any]:
    """The run config in a YAML file, as a dict (an empty file gives ``{}``).

    Raises RunConfigError naming the file (and the line, for a YAML syntax error) when it
    is missing, is not YAML, or does not hold a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunConfigError(f"run config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RunConfigError(f"run config file {path} is not UTF-8 text (byte {exc.start}): not a YAML file?") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RunConfigError(f"run config file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RunConfigError(
            f"run config file {path} holds a {type(data).__name__}, not a mapping of sections "
            "(resources, loggers, ops) as in the launchpad"
        )
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The problem of a YAML error with its line and column (1-based), and what was being parsed where."""

    def at(mark: yaml.Mark | None) -> str:
        return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""

    problem = getattr(exc, "problem", None)
    if problem is None:
        return str(exc)
    text = f"{problem}{at(getattr(exc, 'problem_mark', None))}"
    context = getattr(exc, "context", None)
    if context:
        text += f" ({context}{at(getattr(exc, 'context_mark', None))})"
    return text


def _config_value(value: Any) -> Any:
    """A run config value with Dagster's ``{env: NAME}`` form resolved."""
    if isinstance(value, Mapping) and set(value) == {"env"}:
        return os.environ.get(str(value["env"]))
    return value


def _resource_block(run_config: dict[str, Any], resource: str) -> dict[str, Any]:
    """``run_config["resources"][resource]["config"]``, created where missing."""
    resources = run_config.setdefault("resources", {})
    block = resources.setdefault(resource, {})
    if block.get("config") is None:
        block["config"] = {}
    return block["config"]


def resource_field(run_config: Mapping[str, Any], resource: str, field: str) -> Any:
    """``field`` of ``resource``'s config block in ``run_config``, ``{env: NAME}`` resolved; None when absent."""
    block = ((run_config.get("resources") or {}).get(resource) or {}).get("config") or {}
    return _config_value(block.get(field)) if isinstance(block, Mapping) else None


def build_run_config(
    file_config: Mapping[str, Any] | None, options: RunOptions, log_level: str = "CRITICAL"
) -> dict[str, Any]:
    """The run config for every run of one command: the file's, then each given option on top.

    Source, data root and subsample values are always written (option, else file, else
    ``HYPERSIM_SOURCE`` / ``HYPERSIM_DATA_ROOT`` / ``HYPERSIM_SUBSAMPLES``, else the
    defaults), so a run's page shows where its data came from and went. The console log
    level is the file's, else ``log_level``. Raises RunConfigError for a malformed
    ``HYPERSIM_SUBSAMPLES``.
    """
    run_config = copy.deepcopy(dict(file_config or {}))
    for section in IGNORED_SECTIONS:
        run_config.pop(section, None)

    hypersim = _resource_block(run_config, "hypersim")
    if options.source is not None:
        hypersim["source"] = source_config_value(options.source)
    elif _config_value(hypersim.get("source")) is None:
        hypersim["source"] = source_config_value(os.environ.get(ENV_SOURCE) or UPSTREAM)
    elif isinstance(hypersim.get("source"), str):
        hypersim["source"] = source_config_value(hypersim["source"])
    if options.data_root is not None:
        hypersim["data_root"] = str(Path(options.data_root).expanduser().resolve())
    elif _config_value(hypersim.get("data_root")) is None:
        hypersim["data_root"] = str(data_root_from_env().resolve())

    catalog = _resource_block(run_config, "catalog")
    if options.additional_subsamples is not None:
        catalog["subsamples"] = _subsample_text(sorted({1, *options.additional_subsamples}))
    elif not _config_value(catalog.get("subsamples")):
        try:
            catalog["subsamples"] = _subsample_text(parse_subsamples(os.environ.get(ENV_SUBSAMPLES)))
        except ValueError as exc:  # the message names the variable and its value
            raise RunConfigError(str(exc)) from exc

    conversion_fields = {
        "workers": options.workers,
        "tilt_shift": options.tilt_shift,
        "png_compression": options.png_compression,
    }
    for field, value in conversion_fields.items():
        if value is not None:
            _resource_block(run_config, "conversion")[field] = value
    if options.members is not None:
        _resource_block(run_config, "download")["members"] = options.members

    console = run_config.setdefault("loggers", {}).setdefault("console", {})
    if console.get("config") is None:
        console["config"] = {}
    console["config"].setdefault("log_level", log_level)
    return run_config


def data_root_of(run_config: Mapping[str, Any]) -> Path:
    """The data root a run config names (``HYPERSIM_DATA_ROOT`` / the default when it names none)."""
    value = resource_field(run_config, "hypersim", "data_root")
    return Path(value).expanduser().resolve() if value else data_root_from_env().resolve()


def validate_run_config(run_config: Mapping[str, Any], jobs: Iterable[dg.JobDefinition]) -> None:
    """Raise RunConfigError listing every problem (with its config path) that any of ``jobs`` finds:
    first Dagster's schema, then the values each configured resource itself rejects."""
    jobs = list(jobs)
    unset = [
        f"{path}: environment variable {name} is not set"
        for path, name in _env_references(run_config)
        if name not in os.environ
    ]
    if unset:  # Dagster reports these with its own stack trace
        raise RunConfigError("run config rejected before any run started:\n  " + "\n  ".join(unset))
    problems: dict[str, list[str]] = {}  # message -> the jobs that reject it
    for job in jobs:
        try:
            dg.validate_run_config(job, dict(run_config))
        except dg.DagsterInvalidConfigError as exc:
            for error in exc.errors:
                # The schema dump after "Expected:" is kilobytes, and differs per job for one mistake.
                message = re.split(r'\.? Expected:? "', error.message, maxsplit=1)[0]
                problems.setdefault(message, []).append(job.name)
    if problems:
        lines = [f"{message} (job {', '.join(names)})" for message, names in problems.items()]
        raise RunConfigError("run config rejected before any run started:\n  " + "\n  ".join(lines))
    rejected = resource_value_problems(run_config, jobs)
    if rejected:
        raise RunConfigError("run config rejected before any run started:\n  " + "\n  ".join(rejected))


def _env_references(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted path, variable name) of every ``{env: NAME}`` value in a run config."""
    if isinstance(value, Mapping):
        if set(value) == {"env"}:
            return [(path, str(value["env"]))]
        return [
            ref for key, item in value.items() for ref in _env_references(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [ref for i, item in enumerate(value) for ref in _env_references(item, f"{path}[{i}]")]
    return []


def resource_value_problems(run_config: Mapping[str, Any], jobs: Iterable[dg.JobDefinition]) -> list[str]:
    """Each run config value that Dagster's config schema accepts but a run would fail on, as
    ``resources.R.config.FIELD: why (got VALUE)``: a source no run can read, subsamples the views
    step cannot use, a console log level Dagster rejects, and what each resource's fields or numeric
    ``BOUNDS`` reject (:mod:`hypersim_assets.defs.config_values`; e.g. more conversion workers than
    this machine could start). ``{env: NAME}`` values are read from this process's environment;
    unset ones are left to the run."""
    classes: dict[str, type] = {}
    for job in jobs:
        for key, definition in job.resource_defs.items():
            cls = getattr(definition, "configurable_resource_cls", None)
            if cls is not None:
                classes.setdefault(key, cls)
    out: list[str] = []
    try:  # read by every run's first step: a source no run can read fails here, not after retries
        source = HypersimSource.parse(resource_field(run_config, "hypersim", "source"))
    except InvalidSource as exc:
        out.append(f"{config_path('hypersim', 'source')}: {exc}")
    else:
        if not source.is_remote and not Path(source.base).is_dir():
            what = "is a file" if Path(source.base).exists() else "does not exist"
            out.append(f"{config_path('hypersim', 'source')}: {source.base} {what}; a local source is a directory")
    subsamples = resource_field(run_config, "catalog", "subsamples")
    try:  # read only by the views step, the last of a run: after every scene was converted
        parse_subsamples(subsamples)
    except ValueError as exc:
        out.append(f"{config_path('catalog', 'subsamples')}: {exc}")
    console = ((run_config.get("loggers") or {}).get("console") or {}).get("config") or {}
    level = _config_value(console.get("log_level")) if isinstance(console, Mapping) else None
    if isinstance(level, str) and level.upper() not in LOG_LEVELS:  # Dagster's check fails the run as it starts
        out.append(f"loggers.console.config.log_level: must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    for key, entry in sorted((run_config.get("resources") or {}).items()):
        block = entry.get("config") if isinstance(entry, Mapping) else None
        if key not in classes or not isinstance(block, Mapping):
            continue
        values = {name: _config_value(value) for name, value in block.items()}
        values = {name: value for name, value in values.items() if value is not None}
        try:
            classes[key](**values)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                out.append(f"{config_path(key, field)}: {error['msg']} (got {error.get('input')!r})")
            continue
        out += bound_problems(key, values, getattr(classes[key], "BOUNDS", {}))
    return out


def describe_settings(run_config: Mapping[str, Any]) -> str:
    """One line naming the run config values this command sets, for the console."""
    resources = run_config.get("resources") or {}
    parts = []
    for resource in ("hypersim", "catalog", "conversion", "download"):
        block = (resources.get(resource) or {}).get("config") or {}
        for key, value in block.items():
            parts.append(f"{resource}.{key}={value}")
    return ", ".join(parts)


def _subsample_text(values) -> str:
    """Subsample values as the catalog resource takes them: comma-separated text, e.g. ``"1,2,5"``."""
    return ",".join(str(int(v)) for v in values)


def source_config_value(source: str) -> str | dict[str, str]:
    """The run-config value for ``source``: the text itself (a directory or ``file://`` URL as an
    absolute path), or, when it is a URL carrying a password, ``{"env": "HYPERSIM_SOURCE"}`` with
    the URL put into this process's environment.

    Dagster stores run config verbatim in its run database and shows it on the run's page;
    a password must reach the run without being written there (runs of this command
    execute in this process, so they read the variable).
    """
    if redact_url(source) == source:
        try:
            parsed = HypersimSource.parse(source)
        except InvalidSource:
            return source  # validate_run_config names the problem
        # A directory as an absolute path: a run re-executed from the UI runs in another directory.
        return source if parsed.is_remote else parsed.base
    os.environ[ENV_SOURCE] = source
    return {"env": ENV_SOURCE}
