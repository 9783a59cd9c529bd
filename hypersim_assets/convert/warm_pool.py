"""The conversion worker pool and this process's one kept ("warm") pool: a command opens the
registry, and its scene conversions, one after the other, adopt the pool the previous one handed
back instead of each starting (and importing the conversion code in) a pool of its own.

Light on purpose: importing this module imports neither numpy nor the conversion code (the
forkserver imports that, in its own process).
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hypersim_assets.convert.parent_watch import exit_with_owner, owner_initializer_args

# What the forkserver imports once before it forks any worker: the scene converter and with it
# every module a frame conversion needs (named, not imported, to keep this module light).
PRELOAD_MODULE = "hypersim_assets.convert.scene_conversion"


def _warm_up() -> int:
    """A pool task that costs nothing once its worker exists (it forked with the conversion code
    imported): submitted once per worker at the pool's start so each worker starts now rather than
    at its first frame."""
    return os.getpid()


@dataclass
class ConversionPool:
    """A forkserver process pool of ``workers`` conversion workers, owned by process ``owner_pid``.

    ``ready_at`` is the ``time.monotonic()`` second at which every worker had started (None until then).
    """

    executor: cf.ProcessPoolExecutor
    workers: int
    owner_pid: int
    ready_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _on_ready: list[Callable[[float], None]] = field(default_factory=list, repr=False)

    def on_ready(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(ready_at)`` once every worker has started (at once if that happened already)."""
        with self._lock:
            if self.ready_at is None:
                self._on_ready.append(callback)
                return
            ready_at = self.ready_at
        callback(ready_at)

    def _mark_ready(self) -> None:
        with self._lock:
            self.ready_at = time.monotonic()
            callbacks, self._on_ready = self._on_ready, []
        for callback in callbacks:
            callback(self.ready_at)

    def shutdown(self) -> None:
        """End the workers (frames not started are dropped; running ones finish first)."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def start_pool(workers: int) -> ConversionPool:
    """A forkserver pool whose workers end with this process (:mod:`.parent_watch`), being warmed:
    one cheap task per worker makes each start now rather than at its first frame.

    The forkserver preloads the conversion code, so workers fork with it imported: measured ready
    0.5-1 s sooner than importing in each worker, and the imports cost CPU once instead of once per
    worker. The preload applies when this process starts its forkserver (its first pool); later
    pools fork from that one.

    Returns at once: the workers are started by a thread of their own. Starting one waits until
    the forkserver has imported the preload and forked (about a second for a process's first
    pool), and the scene step used to wait for that before its download began; now the first
    frame's members arrive while the workers start. A frame submitted meanwhile waits for its
    worker in the executor as usual.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD_MODULE])
    executor = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=exit_with_owner,
        initargs=owner_initializer_args(),
    )
    pool = ConversionPool(executor, workers, os.getpid())
    threading.Thread(target=_warm, args=(pool,), name="conversion-pool-start", daemon=True).start()
    return pool


def _warm(pool: ConversionPool) -> None:
    """Start every worker of ``pool`` now (each spawn blocks until the forkserver has forked) and
    mark the pool ready once all have run their warm-up task."""
    remaining = [pool.workers]
    lock = threading.Lock()

    def one_warm(_future: cf.Future) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            pool._mark_ready()

    try:
        for _ in range(pool.workers):
            pool.executor.submit(_warm_up).add_done_callback(one_warm)
    except RuntimeError:  # shut down (or broken) while starting: frames submitted now say so themselves
        return


class _Registry:
    """This process's kept pool: idle (adoptable) or lent to a conversion."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: ConversionPool | None = None
        self.lent: ConversionPool | None = None
        self.open = False  # a command keeps pools (keep_pools) and has not shut down: a lent pool may come back
        self.exit_hook = False


_registry = _Registry()


def keep_pools() -> None:
    """Open this process's registry without starting a pool: the first conversion starts its own
    pool and hands it back when it ends cleanly, and the next conversion with the same worker count
    adopts it (a command converting several scenes one after the other starts one pool, not one per
    scene). :func:`shutdown_warm_pool` (also run at exit) ends it. Does nothing when already open.
    """
    with _registry.lock:
        _registry.open = True
        if not _registry.exit_hook:
            _registry.exit_hook = True
            atexit.register(shutdown_warm_pool)


@contextlib.contextmanager
def kept_pools() -> Iterator[None]:
    """A command's block: :func:`keep_pools` on entry; on every way out :func:`shutdown_warm_pool`,
    then the forkserver is asked to stop (:func:`_stop_forkserver_soon`)."""
    keep_pools()
    try:
        yield
    finally:
        shutdown_warm_pool()
        _stop_forkserver_soon()


def _stop_forkserver_soon() -> None:
    """Ask this process's forkserver to exit now, on a thread of its own, not when this process exits.

    The command starts its pool outside any Dagster step, so the forkserver holds the command's
    own stdout and stderr; having preloaded the conversion code, it takes about 0.25 s to exit.
    Stopped only at this process's exit, it held a pipe reading the command's output (``| tee``,
    a benchmark) open 0.3 s after the command itself had ended; stopped here, its exit overlaps
    the command's. The stdlib has no public call for this: its own ``_stop`` (CPython 3.4+),
    skipped if absent. A later pool in this process starts a new forkserver."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        threading.Thread(target=stop, name="forkserver-stop", daemon=True).start()


def prestart_pool(workers: int) -> bool:
    """Start this process's warm pool of ``workers`` workers now, ahead of the first conversion that
    will adopt it; True if started. Does nothing (False) unless a command opened the registry
    (:func:`keep_pools`) and no pool is idle or lent: without an open registry nobody would adopt it.
    """
    with _registry.lock:
        if not _registry.open or _registry.idle is not None or _registry.lent is not None:
            return False
        _registry.idle = start_pool(workers)
    return True


def adopt_pool(workers: int) -> ConversionPool | None:
    """Take this process's warm pool for one scene conversion, or None (then start your own).

    Only a pool of exactly ``workers`` workers, started by this process, is handed out, and only
    to one caller at a time: it leaves the registry until :func:`return_pool`. A registered pool of
    another size is shut down (nothing in this process will want it).
    """
    with _registry.lock:
        pool, _registry.idle = _registry.idle, None
    if pool is None:
        return None
    if pool.workers == workers and pool.owner_pid == os.getpid():
        with _registry.lock:
            _registry.lent = pool
        return pool
    pool.shutdown()
    return None


def return_pool(pool: ConversionPool, reusable: bool) -> None:
    """Hand a conversion's pool back when the conversion ends: kept as the warm pool for the next
    conversion while the registry is open (a command called :func:`keep_pools` and has not shut it down),
    no pool is idle and the conversion ended cleanly (``reusable``); else shut down (a failed or
    cancelled conversion may have left a worker broken or busy). Outside such a command, every
    pool is shut down, as before there was a registry."""
    with _registry.lock:
        if _registry.lent is pool:
            _registry.lent = None
        keep = reusable and _registry.open and _registry.idle is None
        if keep:
            _registry.idle = pool
    if not keep:
        pool.shutdown()


def shutdown_warm_pool() -> None:
    """Close the registry and end the warm pool if it is idle (a lent pool is shut down when returned).

    Called by the command on every way out (success, error, signal) and at interpreter exit.
    """
    with _registry.lock:
        _registry.open = False
        pool, _registry.idle = _registry.idle, None
    if pool is not None:
        pool.shutdown()


def warm_pool_state() -> str:
    """``none``, ``idle`` or ``lent`` (tests and diagnostics)."""
    with _registry.lock:
        if _registry.idle is not None:
            return "idle"
        if _registry.lent is not None:
            return "lent"
        return "none"
