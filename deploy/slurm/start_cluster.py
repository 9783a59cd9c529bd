"""Start a Dask cluster on SLURM for hypersim-assets and print its scheduler address.

Run on a login node (or in a long-running SLURM job) with the project installed and
dask-jobqueue available (pip install 'hypersim-assets[dask]' dask-jobqueue):

    python deploy/slurm/start_cluster.py --jobs 4

Then give the printed address and TLS files to Dagster: the printed ``export`` lines
(HYPERSIM_DASK_SCHEDULER=tls://..., HYPERSIM_DASK_TLS_*_FILE) in the environment of the
runs, or resources.dask.config.*. The cluster lives as long as this script; Ctrl-C cancels
the SLURM jobs.

Security, because a login node is shared: the scheduler speaks TLS with mutual
authentication (only holders of the key in ``--tls-dir`` can connect or submit code),
with a self-signed certificate made once into ``--tls-dir`` (default ~/.hypersim-dask-tls,
mode 0700; it must be readable by your jobs on the compute nodes, as your home is). The
dashboard listens on 127.0.0.1 only: reach it with ``ssh -L 8787:127.0.0.1:8787 <login node>``.
``--insecure`` starts the old plain-TCP cluster, for single-user machines only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import dask.config
import yaml

HERE = Path(__file__).resolve().parent


def load_config(path: Path) -> None:
    """Merge ``path`` (a jobqueue.yaml) into Dask's configuration, over the defaults."""
    with open(path) as f:
        dask.config.update(dask.config.config, yaml.safe_load(f), priority="new")


def tls_files(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) in ``folder``: a self-signed pair for every role, made once (key 0600, folder 0700)."""
    folder = folder.expanduser()
    cert, key = folder / "dask-cert.pem", folder / "dask-key.pem"
    if not (cert.is_file() and key.is_file()):
        from distributed.security import Security

        temporary = Security.temporary()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        for path, text in ((cert, temporary.tls_ca_file), (key, temporary.tls_client_key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
    return cert, key


def security_from(cert: Path, key: Path):  # noqa: ANN201 - distributed.security.Security
    """Mutual TLS for scheduler, workers and clients, from one certificate that is also the CA."""
    from distributed.security import Security

    files = {
        f"tls_{role}_{kind}": str(path)
        for role in ("client", "scheduler", "worker")
        for kind, path in (("cert", cert), ("key", key))
    }
    return Security(tls_ca_file=str(cert), require_encryption=True, **files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=HERE / "jobqueue.yaml", help="jobqueue YAML (default: beside this script)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="SLURM jobs to start (each runs `processes` workers)")
    parser.add_argument(
        "--adapt-max-jobs",
        type=int,
        default=0,
        help="instead of --jobs: scale between 0 and this many jobs with the load",
    )
    parser.add_argument("--print-job-script", action="store_true", help="print the sbatch script and exit")
    parser.add_argument(
        "--tls-dir", type=Path, default=Path("~/.hypersim-dask-tls"), help="where the TLS certificate and key live"
    )
    parser.add_argument("--insecure", action="store_true", help="plain TCP, no TLS (single-user machines only)")
    args = parser.parse_args()

    load_config(args.config)
    from dask_jobqueue import SLURMCluster

    if args.insecure:
        print("WARNING: --insecure: anyone who can reach the scheduler port can run code as you")
        cluster = SLURMCluster()
        cert = key = None
    else:
        cert, key = tls_files(args.tls_dir)
        cluster = SLURMCluster(security=security_from(cert, key), protocol="tls://")
    if args.print_job_script:
        print(cluster.job_script())
        cluster.close()
        return
    if args.adapt_max_jobs:
        cluster.adapt(minimum_jobs=0, maximum_jobs=args.adapt_max_jobs)
    else:
        cluster.scale(jobs=args.jobs)
    print(f"scheduler address: {cluster.scheduler_address}")
    print(f"  export HYPERSIM_DASK_SCHEDULER={cluster.scheduler_address}")
    if cert is not None:
        for name, path in (("CA", cert), ("CERT", cert), ("KEY", key)):
            print(f"  export HYPERSIM_DASK_TLS_{name}_FILE={path}")
    print(f"dashboard: {cluster.dashboard_link} (loopback only: ssh -L 8787:127.0.0.1:8787 to this node)")
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
