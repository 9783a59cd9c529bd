"""The automation sensor that keeps the index and views fresh. Dagster's default
automation sensor is created stopped; ours ships running."""

from __future__ import annotations

import dagster as dg

automation_sensor = dg.AutomationConditionSensorDefinition(
    "hypersim_automation",
    target=dg.AssetSelection.assets("frame_index", "subsample_views"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Rebuilds the frame index and views after scene partitions materialise.",
)
