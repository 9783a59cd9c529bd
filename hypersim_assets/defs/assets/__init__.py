"""The software-defined assets, one module per stage: raw (metadata and scene
downloads), conversion (per-scene frames), catalog (frame index and views)."""
