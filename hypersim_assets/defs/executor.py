"""The code location's executor: every step of a run executes in the run's own
process, one after the other.

Why not Dagster's default (one subprocess per step): a scene run is a chain
(``scene_step``, which downloads and converts, -> the checks of ``raw_scene`` and
``converted_scene``), so steps gain nothing from running side by side, and each step
subprocess re-imports Dagster and this package (seconds per step on a small machine,
four steps per scene). The parallel work happens inside the steps: member fetches in
threads, frame conversion in a process pool or on Dask. Pools
(``hypersim_download``) and retry policies apply in the run process as well.
"""

import dagster as dg


@dg.definitions
def executor() -> dg.Definitions:
    """The default executor of every job of the code location (asset jobs and backfills included)."""
    return dg.Definitions(executor=dg.in_process_executor)
