"""Retry policies and pools shared by the assets."""

from __future__ import annotations

import dagster as dg

# Scene downloads share this pool; its limit lives in the instance (dagster.yaml).
DOWNLOAD_POOL = "hypersim_download"

# Transient faults (a dropped CDN connection that outlived the HTTP-level
# retries, a lost worker) get three more tries, 30 s then 60 s then 120 s, each
# +-50 % so that many partitions failing together do not retry in lock-step.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
