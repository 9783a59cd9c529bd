"""A snapshot of the code location's shape (assets with their keys, groups,
partitions, deps, kinds, code versions, pools, retry policies and automation
conditions; checks; jobs with their executor; schedules; sensors; resources), so that any change to
it shows up as a diff to review. After an intended change, rewrite the snapshot:

    pytest hypersim_assets_tests/test_asset_graph_snapshot.py --snapshot-update

and commit ``__snapshots__/`` with the change.
"""

from __future__ import annotations

import dagster as dg
import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from hypersim_assets.definitions import defs


@pytest.fixture
def snapshot_json(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def _condition(condition: dg.AutomationCondition | None) -> str | None:
    """An automation condition as one line: ``NAME[label](children...)``, recursively."""
    if condition is None:
        return None
    label = condition.get_label()
    head = condition.name + (f"[{label}]" if label else "")
    children = [_condition(child) for child in condition.children]
    return head + (f"({', '.join(children)})" if children else "")


def _partitions(pdef: dg.PartitionsDefinition | None) -> str | None:
    if pdef is None:
        return None
    name = getattr(pdef, "name", None)
    return f"{type(pdef).__name__}({name})" if name else type(pdef).__name__


def _retry(policy: dg.RetryPolicy | None) -> dict | None:
    if policy is None:
        return None
    return {
        "max_retries": policy.max_retries,
        "delay_s": policy.delay,
        "backoff": policy.backoff.value if policy.backoff else None,
        "jitter": policy.jitter.value if policy.jitter else None,
    }


def graph_shape(definitions: dg.Definitions) -> dict:
    """What the snapshot holds, as plain JSON-able data in a stable order."""
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        op = graph.assets_def_for_key(key).op
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "code_version": node.code_version,
            "pool": op.pool,
            "retry_policy": _retry(op.retry_policy),
            "automation_condition": _condition(node.automation_condition),
        }
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        checks[f"{key.asset_key.to_user_string()}:{key.name}"] = {
            "blocking": spec.blocking,
            "partitions": _partitions(spec.partitions_def),
            "additional_deps": sorted(d.asset_key.to_user_string() for d in spec.additional_deps),
            "description": spec.description,
        }
    jobs = {}
    for job in sorted(definitions.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "checks": sorted(
                f"{k.asset_key.to_user_string()}:{k.name}" for k in job.asset_layer.asset_graph.asset_check_keys
            ),
            "partitions": _partitions(job.partitions_def),
            "executor": job.executor_def.name,
            "tags": dict(sorted(job.tags.items())),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in sorted(definitions.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        s.name: {"type": type(s).__name__, "default_status": s.default_status.value}
        for s in sorted(definitions.sensors or [], key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": jobs,
        "schedules": schedules,
        "sensors": sensors,
        "resources": sorted(definitions.resources or {}),
    }


def test_asset_graph_matches_the_snapshot(snapshot_json):
    assert graph_shape(defs) == snapshot_json
