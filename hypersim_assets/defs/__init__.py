"""Dagster wiring: assets, resources, checks, jobs, schedules and sensors. Thin
layers over the Dagster-free modules of the package."""
