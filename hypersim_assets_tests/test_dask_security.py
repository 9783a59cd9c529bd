"""A secured Dask cluster on loopback: a TLS scheduler with the certificates the SLURM recipe
makes admits our client with them and refuses one without; the Dask resource takes its TLS
settings from config or the environment; plain ``tcp://`` is refused when TLS is required."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from hypersim_assets.convert.dask_execution import (  # noqa: E402
    DaskConfig,
    DaskSchedulerUnreachable,
    connect,
    dask_client,
)
from hypersim_assets.defs.dask_resource import DaskResource  # noqa: E402

START_CLUSTER = Path(__file__).resolve().parents[1] / "deploy" / "slurm" / "start_cluster.py"


def _recipe():
    spec = importlib.util.spec_from_file_location("start_cluster", START_CLUSTER)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory):
    recipe = _recipe()
    cert, key = recipe.tls_files(tmp_path_factory.mktemp("tls") / "certs")
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tls://",
        security=recipe.security_from(cert, key),
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address, cert, key


def test_tls_scheduler_admits_the_certificate_holder_only(tls_cluster) -> None:
    address, cert, key = tls_cluster
    assert address.startswith("tls://127.0.0.1:")
    config = DaskConfig(
        scheduler_address=address,
        tls_ca_file=str(cert),
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        require_encryption=True,
        connect_timeout_s=20,
    )
    with dask_client(config) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=20) == 6
    with pytest.raises(DaskSchedulerUnreachable, match="TLS scheduler but no client certificate"):
        connect(address, 3.0).close()


def test_tls_settings_are_checked_and_read_from_the_environment(tls_cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    address, cert, key = tls_cluster
    with pytest.raises(ValueError, match="not encrypted, but TLS is configured"):
        DaskConfig(scheduler_address="tcp://127.0.0.1:8786", require_encryption=True)
    with pytest.raises(ValueError, match="needs all three"):
        DaskConfig(scheduler_address=address, tls_ca_file=str(cert))
    monkeypatch.setenv("HYPERSIM_DASK_SCHEDULER", address)
    monkeypatch.setenv("HYPERSIM_DASK_TLS_CA_FILE", str(cert))
    monkeypatch.setenv("HYPERSIM_DASK_TLS_CERT_FILE", str(cert))
    monkeypatch.setenv("HYPERSIM_DASK_TLS_KEY_FILE", str(key))
    monkeypatch.setenv("HYPERSIM_DASK_REQUIRE_ENCRYPTION", "true")
    config = DaskResource().dask_config()
    assert config.encrypted and config.require_encryption and config.tls_key_file == str(key)
    security = config.security()
    assert security.require_encryption and security.tls_client_cert == str(cert)
