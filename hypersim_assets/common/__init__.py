"""Dagster-free helpers shared by every other package: on-disk names and layout, atomic file writes, and the per-frame facts record."""
