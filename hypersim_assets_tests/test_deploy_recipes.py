"""The deployment recipes in ``deploy/``: every YAML parses; the two ``dagster.yaml`` files
validate against Dagster's instance schema and, for the K8s run launcher, against
``K8sRunLauncher``'s own config schema; all Kubernetes pieces mount the data volume at the
same path; the SLURM config uses only dask-jobqueue keys and ``start_cluster.py`` turns it
into the sbatch script we mean."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
K8S = DEPLOY / "kubernetes"
SLURM = DEPLOY / "slurm"


def _need(module: str):
    """Import ``module``; skip when absent, but fail under CI (where the extras are installed)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} must be installed in CI")
        pytest.skip(f"{module} is not installed")


def _load_all(path: Path) -> list:
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def test_every_yaml_parses_and_the_readme_names_every_file():
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {p.relative_to(DEPLOY).as_posix() for p in files} >= {
        "kubernetes/dagster.yaml",
        "kubernetes/values.yaml",
        "kubernetes/dask.yaml",
        "kubernetes/hypersim-env.yaml",
        "postgres/dagster.yaml",
        "slurm/jobqueue.yaml",
    }
    for path in files:
        assert _load_all(path), path
    readme = (DEPLOY / "README.md").read_text()
    for needle in ("postgres/dagster.yaml", "kubernetes/", "slurm/", "rename", "flock", "NFS", "same absolute path"):
        assert needle in readme, needle


@pytest.mark.parametrize("folder", ["postgres", "kubernetes"])
def test_instance_yaml_validates_against_dagster(folder):
    config, custom_class = dagster_instance_config(str(DEPLOY / folder))
    assert custom_class is None
    db = config["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # never a literal password
    _need("dagster_postgres")
    from dagster_postgres import DagsterPostgresStorage

    result = validate_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert result.success, result.errors


def test_k8s_run_launcher_config_validates_against_dagster_k8s():
    config, _ = dagster_instance_config(str(K8S))
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    k8s = _need("dagster_k8s")
    result = validate_config(k8s.K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]


def test_kubernetes_pieces_share_one_data_volume_and_path():
    instance = yaml.safe_load((K8S / "dagster.yaml").read_text())["run_launcher"]["config"]
    values = yaml.safe_load((K8S / "values.yaml").read_text())
    env = yaml.safe_load((K8S / "hypersim-env.yaml").read_text())["data"]
    dask_docs = {(d["kind"], d["metadata"]["name"]): d for d in _load_all(K8S / "dask.yaml")}
    worker_pod = dask_docs[("Deployment", "dask-worker")]["spec"]["template"]["spec"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    code = values["dagster-user-deployments"]["deployments"][0]
    mounts = [
        instance["volume_mounts"],
        launcher["volumeMounts"],
        code["volumeMounts"],
        worker_pod["containers"][0]["volumeMounts"],
    ]
    volumes = [instance["volumes"], launcher["volumes"], code["volumes"], worker_pod["volumes"]]
    assert {m[0]["mountPath"] for m in mounts} == {env["HYPERSIM_DATA_ROOT"]}
    assert {v[0]["persistentVolumeClaim"]["claimName"] for v in volumes} == {"hypersim-data"}
    assert {m[0]["name"] for m in mounts} == {v[0]["name"] for v in volumes}
    # The scheduler address the runs use is the Service that dask.yaml defines, on its port.
    service = dask_docs[("Service", "dask-scheduler")]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "comm")
    assert env["HYPERSIM_DASK_SCHEDULER"].startswith("tls://dask-scheduler.")
    assert env["HYPERSIM_DASK_SCHEDULER"].endswith(f":{port}")
    # Every worker process is single-threaded, as the conversion expects.
    command = worker_pod["containers"][0]["command"]
    assert command[command.index("--nthreads") + 1] == "1"


def test_slurm_config_uses_known_dask_jobqueue_keys():
    ours = yaml.safe_load((SLURM / "jobqueue.yaml").read_text())["jobqueue"]["slurm"]
    jq = _need("dask_jobqueue")
    defaults = yaml.safe_load((Path(jq.__file__).parent / "jobqueue.yaml").read_text())["jobqueue"]["slurm"]
    assert set(ours) <= set(defaults), sorted(set(ours) - set(defaults))
    assert ours["cores"] == ours["processes"]  # one thread per worker process


def test_start_cluster_prints_the_job_script(tmp_path):
    _need("dask_jobqueue")
    config = yaml.safe_load((SLURM / "jobqueue.yaml").read_text())
    slurm = config["jobqueue"]["slurm"]
    # Run the example on loopback, any free port, logs in tmp: nothing leaves the test folder.
    assert slurm["scheduler-options"]["dashboard_address"].startswith("127.0.0.1:")  # never all interfaces
    slurm["scheduler-options"] = {"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"}
    slurm["log-directory"] = str(tmp_path / "logs")
    (tmp_path / "jobqueue.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [
            sys.executable,
            str(SLURM / "start_cluster.py"),
            "--config",
            str(tmp_path / "jobqueue.yaml"),
            "--print-job-script",
            "--tls-dir",
            str(tmp_path / "tls"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    script = out.stdout
    assert f"#SBATCH -p {slurm['queue']}" in script
    assert f"#SBATCH -t {slurm['walltime']}" in script
    assert f"#SBATCH --cpus-per-task={slurm['cores']}" in script
    assert script.count("--cpus-per-task") == 1
    assert "--nthreads 1" in script and f"--nworkers {slurm['processes']}" in script
    assert all(line in script for line in slurm["job-script-prologue"])
    assert "--lifetime=" in script
    # TLS with mutual authentication, from files only the user can read.
    cert, key = tmp_path / "tls" / "dask-cert.pem", tmp_path / "tls" / "dask-key.pem"
    worker_line = next(line for line in script.splitlines() if "dask_worker" in line)
    assert " tls://127.0.0.1:" in worker_line and "--protocol tls://" in worker_line
    assert f"--tls-ca-file {cert}" in worker_line and f"--tls-cert {cert}" in worker_line
    assert f"--tls-key {key}" in worker_line
    assert {oct(p.stat().st_mode & 0o777) for p in (cert, key)} == {"0o600"}
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"


def _k8s_dask() -> dict:
    return {(d["kind"], d["metadata"]["name"]): d for d in _load_all(K8S / "dask.yaml")}


def _flags(command: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs of a command line (a flag followed by another flag has no value)."""
    out: dict[str, str | None] = {}
    for i, word in enumerate(command):
        if word.startswith("--"):
            nxt = command[i + 1] if i + 1 < len(command) else None
            out[word] = None if nxt is None or nxt.startswith("--") else nxt
    return out


def test_kubernetes_dask_is_tls_only_with_a_network_policy():
    docs = _k8s_dask()
    env = yaml.safe_load((K8S / "hypersim-env.yaml").read_text())["data"]
    scheduler = docs[("Deployment", "dask-scheduler")]["spec"]["template"]["spec"]
    worker = docs[("Deployment", "dask-worker")]["spec"]["template"]["spec"]
    mounted = {}
    for pod in (scheduler, worker):
        container = pod["containers"][0]
        flags = _flags(container["command"])
        secret_volumes = {v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "dask-tls"}
        mount = next(m for m in container["volumeMounts"] if m["name"] in secret_volumes)
        for flag in ("--tls-ca-file", "--tls-cert", "--tls-key"):
            assert flags[flag].startswith(mount["mountPath"] + "/"), (flag, flags[flag])
        assert flags["--dashboard-address"].startswith("127.0.0.1:")
        assert {"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"} in container["env"]
        mounted[container["name"]] = flags
    assert mounted["scheduler"]["--protocol"] == "tls"
    assert docs[("Deployment", "dask-worker")]["spec"]["template"]["spec"]["containers"][0]["command"][2].startswith(
        "tls://dask-scheduler:"
    )
    # Only the comm port is in the Service; the dashboard stays inside the pod.
    service_ports = [p["port"] for p in docs[("Service", "dask-scheduler")]["spec"]["ports"]]
    assert service_ports == [8786]
    policy = docs[("NetworkPolicy", "dask-scheduler")]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app": "dask-scheduler"} and policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8786}]
    sources = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert sources == [{"app": "dask-worker"}, {"app.kubernetes.io/part-of": "dagster"}]
    assert all(set(peer) == {"podSelector"} for peer in rule["from"])  # same namespace only
    # The run pods get the client certificate where hypersim-env.yaml says it is.
    assert env["HYPERSIM_DASK_REQUIRE_ENCRYPTION"] == "true"
    launcher = yaml.safe_load((K8S / "values.yaml").read_text())["runLauncher"]["config"]["k8sRunLauncher"]
    instance = yaml.safe_load((K8S / "dagster.yaml").read_text())["run_launcher"]["config"]
    for mounts, volumes in (
        (launcher["volumeMounts"], launcher["volumes"]),
        (instance["volume_mounts"], instance["volumes"]),
    ):
        tls_volume = next(v["name"] for v in volumes if v.get("secret", {}).get("secretName") == "dask-tls")
        path = next(m["mountPath"] for m in mounts if m["name"] == tls_volume)
        for var in ("HYPERSIM_DASK_TLS_CA_FILE", "HYPERSIM_DASK_TLS_CERT_FILE", "HYPERSIM_DASK_TLS_KEY_FILE"):
            assert env[var].startswith(path + "/")


@pytest.mark.parametrize("role", ["scheduler", "worker"])
def test_kubernetes_dask_commands_use_only_real_cli_flags(role):
    _need("distributed")
    container = _k8s_dask()[("Deployment", f"dask-{role}")]["spec"]["template"]["spec"]["containers"][0]
    dask_cli = Path(sys.executable).with_name("dask")
    help_text = subprocess.run([str(dask_cli), role, "--help"], capture_output=True, text=True, timeout=60).stdout
    for flag in _flags(container["command"]):
        assert f"{flag} " in help_text or f"{flag}\n" in help_text or f"{flag}," in help_text, flag
