"""The scene partitions: one dynamic partition per scene with at least one frame
in the public release, filled from the metadata the pipeline downloaded."""

from __future__ import annotations

import dagster as dg

SCENES_PARTITIONS_NAME = "hypersim_scenes"
scene_partitions = dg.DynamicPartitionsDefinition(name=SCENES_PARTITIONS_NAME)
