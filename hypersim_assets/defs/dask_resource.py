"""The ``dask`` resource: whether a scene's frames are converted on a Dask cluster
(a running scheduler, or a local cluster started per run) instead of the run's own
process pool. Unconfigured, it changes nothing."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
from collections.abc import Iterator
from typing import ClassVar

import dagster as dg
from pydantic import Field

from hypersim_assets.convert.dask_execution import DaskConfig, dask_executor
from hypersim_assets.defs.config_values import Bound, require_fields_in_bounds

ENV_DASK_SCHEDULER = "HYPERSIM_DASK_SCHEDULER"
ENV_DASK_TLS_CA_FILE = "HYPERSIM_DASK_TLS_CA_FILE"
ENV_DASK_TLS_CERT_FILE = "HYPERSIM_DASK_TLS_CERT_FILE"
ENV_DASK_TLS_KEY_FILE = "HYPERSIM_DASK_TLS_KEY_FILE"
ENV_DASK_REQUIRE_ENCRYPTION = "HYPERSIM_DASK_REQUIRE_ENCRYPTION"


class DaskResource(dg.ConfigurableResource):
    """Where frame conversions run: a Dask scheduler, a local Dask cluster, or (default) the run's own processes."""

    scheduler_address: str | None = Field(
        default=None,
        description="A running Dask scheduler, tcp://host:port (every worker must see the data root at the same path). "
        f"Unset: env {ENV_DASK_SCHEDULER}, else no scheduler.",
    )
    local_cluster_workers: int = Field(
        default=0,
        description="Without a scheduler address: start a local Dask cluster of this many single-threaded "
        "worker processes for each run; 0 = no Dask.",
    )
    connect_timeout_s: float = Field(
        default=30.0,
        description="Seconds (more than 0) to wait for the scheduler (or the local workers) before the run fails.",
    )
    tls_ca_file: str | None = Field(
        default=None,
        description=f"PEM file of the CA of a TLS scheduler (tls://...). Unset: env {ENV_DASK_TLS_CA_FILE}.",
    )
    tls_cert_file: str | None = Field(
        default=None, description=f"PEM file of this client's TLS certificate. Unset: env {ENV_DASK_TLS_CERT_FILE}."
    )
    tls_key_file: str | None = Field(
        default=None, description=f"PEM file of this client's TLS private key. Unset: env {ENV_DASK_TLS_KEY_FILE}."
    )
    require_encryption: bool | None = Field(
        default=None,
        description="Refuse unencrypted Dask connections; a local cluster uses temporary TLS certificates. "
        f"Unset: env {ENV_DASK_REQUIRE_ENCRYPTION} (1/true), else off.",
    )

    # Checked where used (defs.config_values says why not by pydantic).
    BOUNDS: ClassVar[dict[str, Bound]] = {"local_cluster_workers": Bound(0), "connect_timeout_s": Bound(0, above=True)}

    def dask_config(self) -> DaskConfig:
        """The resolved settings (scheduler address from the environment when unset); a value out of
        range fails the step (not retried), naming the field."""
        require_fields_in_bounds("dask", self)
        address = self.scheduler_address or os.environ.get(ENV_DASK_SCHEDULER) or None
        return DaskConfig(
            scheduler_address=address,
            local_cluster_workers=self.local_cluster_workers,
            connect_timeout_s=self.connect_timeout_s,
            tls_ca_file=self.tls_ca_file or os.environ.get(ENV_DASK_TLS_CA_FILE) or None,
            tls_cert_file=self.tls_cert_file or os.environ.get(ENV_DASK_TLS_CERT_FILE) or None,
            tls_key_file=self.tls_key_file or os.environ.get(ENV_DASK_TLS_KEY_FILE) or None,
            require_encryption=self.require_encryption
            if self.require_encryption is not None
            else os.environ.get(ENV_DASK_REQUIRE_ENCRYPTION, "").lower() in ("1", "true", "yes"),
        )

    def enabled(self) -> bool:
        """True when frames go to Dask."""
        return self.dask_config().enabled

    @contextlib.contextmanager
    def executor(self) -> Iterator[cf.Executor | None]:
        """A Dask-backed executor for ``convert_scene(executor=...)``, or None when Dask is not configured."""
        config = self.dask_config()
        if not config.enabled:
            yield None
            return
        with dask_executor(config) as executor:
            yield executor
