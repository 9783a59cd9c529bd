"""Opening a Dask cluster as a ``concurrent.futures.Executor`` for frame conversion:
a running scheduler at ``tcp://host:port`` (e.g. dask-jobqueue on SLURM, a Dask
deployment on Kubernetes) or a ``LocalCluster`` of worker processes started for the
duration of a ``with`` block. Dagster-free.

Frame tasks are safe for Dask to re-run: ``convert_frame`` writes each output to a temp
file and renames it into place, so a worker lost mid-frame leaves no half-written
output, and the scheduler simply runs the frame again on another worker. Tasks are
submitted with ``pure=True``: the key is a hash of the frame's arguments, so two runs
asking for the same frame at once share one task.

Every worker must see the scene's raw folder and the dataset root at the same paths as
the caller (a shared filesystem, see ``deploy/README.md``) and run the same
``hypersim_assets`` version; the latter is checked on connect.

Security: with TLS files (``tls_ca_file``, ``tls_cert_file``, ``tls_key_file``) the client
speaks TLS with mutual authentication (``tls://`` addresses); ``require_encryption``
refuses plain ``tcp://`` and makes a local cluster use temporary certificates. Unset fields
fall back to Dask's own configuration (``distributed.comm.tls.*``).

``dask`` and ``distributed`` are an optional dependency (``pip install
'hypersim-assets[dask]'``); they are imported only when a cluster is opened.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
INSTALL_HINT = "pip install 'hypersim-assets[dask]' (or: pip install 'dask[distributed]')"


class DaskUnavailable(ImportError):
    """``dask.distributed`` is not installed."""


class DaskSchedulerUnreachable(ConnectionError):
    """No scheduler answered at the configured address within the timeout."""


class DaskWorkerMismatch(RuntimeError):
    """A worker cannot import ``hypersim_assets`` or runs another converter version."""


@dataclass(frozen=True)
class DaskConfig:
    """Which cluster to use.

    ``scheduler_address``: a running scheduler (``tcp://host:port``); wins over a local cluster.
    ``local_cluster_workers``: > 0 starts a ``LocalCluster`` of that many single-threaded worker
    processes on this machine; 0 means none. ``connect_timeout_s``: seconds to wait for the
    scheduler (and for local workers to start).
    """

    scheduler_address: str | None = None
    local_cluster_workers: int = 0
    connect_timeout_s: float = 30.0
    tls_ca_file: str | None = None  # CA that signed the scheduler's and workers' certificates (PEM path)
    tls_cert_file: str | None = None  # this client's certificate (PEM path)
    tls_key_file: str | None = None  # this client's private key (PEM path)
    require_encryption: bool = False

    def __post_init__(self) -> None:
        if self.scheduler_address is not None:
            check_scheduler_address(self.scheduler_address)
            if self.encrypted and not self.scheduler_address.startswith(("tls://", "wss://")):
                raise ValueError(
                    f"Dask scheduler address {self.scheduler_address} is not encrypted, but TLS is configured "
                    "(require_encryption or TLS files): use tls://host:port"
                )
        tls = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if any(tls) and not all(tls):
            raise ValueError("Dask TLS needs all three of tls_ca_file, tls_cert_file and tls_key_file")
        if self.local_cluster_workers < 0:
            raise ValueError(f"local_cluster_workers must be >= 0, got {self.local_cluster_workers}")
        if not self.connect_timeout_s > 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")

    @property
    def enabled(self) -> bool:
        """True when a scheduler address or a local cluster is configured."""
        return bool(self.scheduler_address) or self.local_cluster_workers > 0

    @property
    def encrypted(self) -> bool:
        """True when the connection must use TLS (files given or encryption required)."""
        return self.require_encryption or bool(self.tls_ca_file)

    def security(self) -> Any:
        """A ``distributed.security.Security`` for the client: our TLS files over Dask's configuration."""
        from distributed.security import Security

        kwargs: dict[str, Any] = {}
        if self.tls_ca_file:
            kwargs.update(
                tls_ca_file=self.tls_ca_file, tls_client_cert=self.tls_cert_file, tls_client_key=self.tls_key_file
            )
        if self.require_encryption:
            kwargs["require_encryption"] = True
        return Security(**kwargs)


def check_scheduler_address(address: str) -> str:
    """``address`` if it looks like ``<scheme>://host:port`` with a Dask comm scheme, else ValueError."""
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in SCHEMES or not rest:
        raise ValueError(
            f"Dask scheduler address {address!r} is not of the form tcp://host:port (schemes: {', '.join(SCHEMES)})"
        )
    return address


def import_distributed() -> Any:
    """The ``distributed`` module, or DaskUnavailable saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise DaskUnavailable(f"Dask execution needs dask.distributed, which is not installed: {INSTALL_HINT}") from exc
    return distributed


def worker_converter_version() -> str:
    """Runs on a worker: the converter version of the ``hypersim_assets`` installed there."""
    from hypersim_assets.convert.frame_conversion import CONVERTER_VERSION as version

    return version


def check_workers(client: Any) -> dict[str, str]:
    """Converter version per connected worker; DaskWorkerMismatch unless all equal ours."""
    try:
        versions = client.run(worker_converter_version)
    except Exception as exc:  # an unpicklable function on the worker side = module missing there
        raise DaskWorkerMismatch(
            f"Dask workers at {client.scheduler.address} cannot run hypersim_assets "
            f"(install the same version on every worker): {type(exc).__name__}: {exc}"
        ) from exc
    wrong = {w: v for w, v in versions.items() if v != CONVERTER_VERSION}
    if wrong:
        raise DaskWorkerMismatch(
            f"Dask workers run converter version(s) {wrong}, this process {CONVERTER_VERSION}: "
            "install the same hypersim_assets on every worker"
        )
    return versions


def connect(address: str, timeout_s: float, security: Any = None) -> Any:
    """A ``distributed.Client`` connected to the scheduler at ``address``, or DaskSchedulerUnreachable."""
    distributed = import_distributed()
    check_scheduler_address(address)
    try:
        return distributed.Client(address, timeout=timeout_s, set_as_default=False, security=security)
    except TypeError as exc:
        if "ssl_context" not in str(exc):
            raise
        raise DaskSchedulerUnreachable(
            f"{address} is a TLS scheduler but no client certificate is configured: set tls_ca_file, tls_cert_file "
            "and tls_key_file of the dask resource (or HYPERSIM_DASK_TLS_CA_FILE, _CERT_FILE, _KEY_FILE)"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise DaskSchedulerUnreachable(
            f"no Dask scheduler answered at {address} within {timeout_s:g} s "
            f"(is it running and reachable from this host?): {exc}"
        ) from exc


@contextlib.contextmanager
def dask_client(config: DaskConfig) -> Iterator[Any]:
    """A ``distributed.Client`` for ``config``; a local cluster is started and stopped with it."""
    if not config.enabled:
        raise ValueError("DaskConfig names neither a scheduler address nor local cluster workers")
    distributed = import_distributed()
    with contextlib.ExitStack() as stack:
        if config.scheduler_address:
            client = stack.enter_context(connect(config.scheduler_address, config.connect_timeout_s, config.security()))
        else:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=config.local_cluster_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                    timeout=config.connect_timeout_s,
                    # Other users of a shared machine could submit code to an open loopback port.
                    security=True if config.require_encryption else None,
                )
            )
            client = stack.enter_context(
                distributed.Client(cluster, timeout=config.connect_timeout_s, set_as_default=False)
            )
        check_workers(client)
        yield client


@contextlib.contextmanager
def dask_executor(config: DaskConfig) -> Iterator[cf.Executor]:
    """A ``concurrent.futures.Executor`` whose tasks run on the Dask cluster of ``config``.

    On exit, futures still pending are cancelled and the client closed (a local cluster
    is shut down); a remote cluster keeps running.
    """
    with dask_client(config) as client:
        executor = client.get_executor(pure=True)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)
