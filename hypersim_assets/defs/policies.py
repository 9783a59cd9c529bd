"""Retry policies, pools, and the one translation of domain errors into Dagster's
retry semantics (:func:`failures_of`), shared by every asset."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from hypersim_assets.common.errors import is_permanent

# Scene steps (download and conversion of one scene) share this pool, so its limit (in the
# instance, dagster.yaml) bounds the scenes downloading and converting at once.
DOWNLOAD_POOL = "hypersim_download"

# Transient faults (a dropped CDN connection that outlived the HTTP-level
# retries) get three more tries, 30 s then 60 s then 120 s, each +-50 % so that
# many partitions failing together do not retry in lock-step. Lost run workers
# are the instance's business (run_retries in dagster.yaml), not this policy's.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextlib.contextmanager
def failures_of(what: str, permanent: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run the body; a permanent error leaves as ``dg.Failure(allow_retries=False)``.

    Permanent means :func:`hypersim_assets.common.errors.is_permanent`, or an instance
    of one of ``permanent`` (domain errors not yet classified in ``common.errors``).
    The failure's description is ``"<what>: <the error's message>"``, so the run
    shows the scene and the underlying reason; the original exception is its cause.
    Anything else propagates unchanged and the asset's RetryPolicy retries it;
    a ``dg.Failure`` raised inside passes through as it is.
    """
    try:
        yield
    except dg.Failure:
        raise
    except Exception as exc:
        if is_permanent(exc) or isinstance(exc, permanent):
            raise dg.Failure(description=f"{what}: {exc}", allow_retries=False) from exc
        raise
