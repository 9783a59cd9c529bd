"""What the dataset holds: metadata tables, the blacklist, the Parquet frame index, subsample views, their checks and provenance."""
