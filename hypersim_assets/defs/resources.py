"""Dagster resources: the configuration users set in the launchpad or through
environment variables, and their binding for the code location (:func:`resources`).
Every field has a default that works for the demo.

Environment-driven fields (source, data root, subsamples, Dask scheduler) follow one
rule, so that the UI shows where a value comes from and nothing breaks without it:

- When the code location loads with the variable set, the field is bound to
  ``dg.EnvVar(NAME)``: the UI shows the variable's name, and each run reads its value.
- When the variable is unset, the field stays ``None``.
- A ``None`` field is resolved when a run starts: the environment variable, else the
  built-in default. So a launchpad config block that names only some fields (it
  replaces the whole block, EnvVar bindings included) still falls back to the
  environment, then to the defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Literal

import dagster as dg
from pydantic import Field

from hypersim_assets.catalog.subsample_views import ENV_SUBSAMPLES, parse_subsamples
from hypersim_assets.common.layout import MemberSelection, dataset_dir, raw_dir
from hypersim_assets.defs.config_values import Bound, config_failure, require_fields_in_bounds
from hypersim_assets.defs.dask_resource import ENV_DASK_SCHEDULER, DaskResource
from hypersim_assets.download.source import ENV_DATA_ROOT, ENV_SOURCE, HypersimSource, data_root_from_env


class HypersimResource(dg.ConfigurableResource):
    """Where Hypersim comes from and where our files go."""

    source: str | None = Field(
        default=None,
        description="Hypersim source: 'upstream', an http(s):// or file:// URL, or a directory. "
        "Unset: env HYPERSIM_SOURCE, else upstream.",
    )
    data_root: str | None = Field(
        default=None,
        description="Output root (raw/, dataset/, facts/). Unset: env HYPERSIM_DATA_ROOT, else ./hypersim-data.",
    )

    def parsed_source(self) -> HypersimSource:
        """The source; a source that cannot be parsed is a permanent failure naming the field."""
        try:
            return HypersimSource.parse(self.source) if self.source else HypersimSource.from_env()
        except ValueError as exc:
            raise config_failure("hypersim", "source", ENV_SOURCE, str(exc)) from exc

    def root(self) -> Path:
        """The data root; one that exists but is not a directory is a permanent failure naming the field."""
        root = Path(self.data_root).expanduser().resolve() if self.data_root else data_root_from_env().resolve()
        if root.exists() and not root.is_dir():
            raise config_failure("hypersim", "data_root", ENV_DATA_ROOT, f"{root} is not a directory")
        return root

    def raw_root(self) -> Path:
        return raw_dir(self.root())

    def dataset_root(self) -> Path:
        return dataset_dir(self.root())


class DownloadResource(dg.ConfigurableResource):
    """How scene zips are fetched."""

    members: Literal["conversion", "all", "globs"] = Field(
        default="conversion",
        description="'conversion' (only what the converter reads), 'all', or 'globs' (see member_globs).",
    )
    member_globs: list[str] = Field(
        default_factory=list,
        description="With members='globs': fetch members whose path below <scene>/ matches any of these.",
    )
    workers: int = Field(
        default=16,
        description="Parallel requests (connections) within one scene, 1-64; 16 fills a 400 Mbit/s, 50 ms link "
        "(benchmarks/bench_download.py).",
    )
    coalesce_gap_bytes: int = Field(
        default=0,
        description="Fetch selected members that lie at most this many bytes apart in the zip with one request "
        "(0: members that touch; the gap is fetched and dropped, worth it with few connections while "
        "gap / bandwidth < one round trip); -1 = one request per member.",
    )
    max_attempts: int = Field(default=6, description="HTTP attempts per request before a run fails (at least 1).")
    timeout_s: float = Field(default=60.0, description="Socket timeout per HTTP request, seconds (more than 0).")
    verify: Literal["crc", "size"] = Field(
        default="crc",
        description="On a re-run, check members already on disk by size and CRC-32 ('crc') or size only ('size').",
    )
    delete_raw_after_conversion: bool = Field(
        default=False,
        description="Delete a scene's raw files once its conversion succeeded (for users without 2 TB to spare).",
    )

    # Checked where a step uses them (see defs.config_values for why not by pydantic).
    BOUNDS: ClassVar[dict[str, Bound]] = {
        "workers": Bound(1, 64),
        "coalesce_gap_bytes": Bound(-1),
        "max_attempts": Bound(1),
        "timeout_s": Bound(0, above=True),
    }

    def checked(self) -> DownloadResource:
        """This resource, after failing the step (not retried) when a numeric field is out of range."""
        require_fields_in_bounds("download", self)
        return self

    def selection(self) -> MemberSelection:
        """The member selection; an inconsistent one (``globs`` without a glob) is a permanent failure."""
        try:
            return MemberSelection(mode=self.members, globs=tuple(self.member_globs))
        except ValueError as exc:
            raise config_failure("download", "members/member_globs", None, str(exc)) from exc


# Conversion worker processes per core of the machine a run executes on, at most.
MAX_WORKERS_PER_CORE = 8


class ConversionResource(dg.ConfigurableResource):
    """How frames are converted."""

    workers: int = Field(default=0, description="Worker processes per scene; 0 = one per core.")
    tilt_shift: bool = Field(
        default=True, description="Reproject tilt-shift cameras onto a pinhole camera (the reference's default)."
    )
    png_compression: Literal["fast", "default", "small"] = Field(
        default="default",
        description="PNG speed/size trade-off: 'fast' (about 0.45x the time of 'default', 1.3x the bytes), "
        "'default', or 'small' (about 4.5x the time, 1.01x the reference's bytes).",
    )
    force: bool = Field(default=False, description="Re-convert frames even if their outputs are complete.")

    # Checked where used (defs.config_values). Above the maximum a value is taken for a typo: the
    # pool starts every worker at once (--n-processes 100000 began forking 100000 processes).
    BOUNDS: ClassVar[dict[str, Bound]] = {"workers": Bound(0, MAX_WORKERS_PER_CORE * (os.cpu_count() or 1))}

    def worker_count(self) -> int:
        """Worker processes per scene; a negative ``workers`` fails the step (not retried), naming the field."""
        require_fields_in_bounds("conversion", self)
        return self.workers or (os.cpu_count() or 1)


class CatalogResource(dg.ConfigurableResource):
    """Settings of the frame index and the subsample views."""

    # A string in the environment variable's syntax, so that it can be bound to dg.EnvVar.
    subsamples: str | None = Field(
        default=None,
        description="Every-N-th values for the views, comma-separated (e.g. '1,2,5,10,20'). "
        "Unset: env HYPERSIM_SUBSAMPLES, else 1,10.",
    )

    def subsample_values(self) -> tuple[int, ...]:
        """The every-N-th values; values that cannot be parsed are a permanent failure naming the field."""
        try:
            return parse_subsamples(self.subsamples or os.environ.get(ENV_SUBSAMPLES))
        except ValueError as exc:
            raise config_failure("catalog", "subsamples", ENV_SUBSAMPLES, str(exc)) from exc


def env_binding(name: str) -> dg.EnvVar | None:
    """``dg.EnvVar(name)`` when the variable is set now (the UI then shows its name), else None
    (the field is resolved from the environment, then its default, when a run starts)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


@dg.definitions
def resources() -> dg.Definitions:
    """The resources every asset, check and job of the code location uses, bound to the environment."""
    return dg.Definitions(
        resources={
            "hypersim": HypersimResource(source=env_binding(ENV_SOURCE), data_root=env_binding(ENV_DATA_ROOT)),
            "download": DownloadResource(),
            "conversion": ConversionResource(),
            "catalog": CatalogResource(subsamples=env_binding(ENV_SUBSAMPLES)),
            "dask": DaskResource(scheduler_address=env_binding(ENV_DASK_SCHEDULER)),
        }
    )
