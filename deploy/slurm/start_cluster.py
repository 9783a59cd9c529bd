"""Start a Dask cluster on SLURM for hypersim-assets and print its scheduler address.

Run on a login node (or in a long-running SLURM job) with the project installed and
dask-jobqueue available (pip install 'hypersim-assets[dask]' dask-jobqueue):

    python deploy/slurm/start_cluster.py --jobs 4

Then give the printed address to Dagster: resources.dask.config.scheduler_address,
or HYPERSIM_DASK_SCHEDULER=tcp://... in the environment of the runs. The cluster
lives as long as this script; Ctrl-C cancels the SLURM jobs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import dask.config
import yaml

HERE = Path(__file__).resolve().parent


def load_config(path: Path) -> None:
    """Merge ``path`` (a jobqueue.yaml) into Dask's configuration, over the defaults."""
    with open(path) as f:
        dask.config.update(dask.config.config, yaml.safe_load(f), priority="new")


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
    args = parser.parse_args()

    load_config(args.config)
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster()
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
    print(f"dashboard: {cluster.dashboard_link}")
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
