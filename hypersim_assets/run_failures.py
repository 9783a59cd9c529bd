"""What went wrong in a run, read back from the instance's event log: the underlying error
of each failed step (never Dagster's "Exceeded max_retries" wrapper), of each resource that
could not start, and the recorded problems of each failed asset check; the run's own failure
when none of these explains it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

# Errors that only wrap the one that caused them.
_WRAPPER_CLASSES = frozenset(
    {
        "RetryRequested",
        "RetryRequestedFromPolicy",
        "DagsterExecutionStepExecutionError",
        "DagsterMaxRetriesExceededError",
        "DagsterUserCodeExecutionError",
        "DagsterResourceFunctionError",
    }
)
_WRAPPER_PREFIXES = ("Exceeded max_retries", "Error occurred while executing", "Error executing resource_fn")
MAX_DETAIL_CHARS = 1500


@dataclass(frozen=True)
class Problem:
    """One failed step or failed check of a run, with the message a user needs."""

    run_id: str
    where: str  # step key, or "check <asset>.<check>"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _short(cls_name: str | None, message: str) -> tuple[str, str]:
    """(short class name, message without a leading "module.Class: ") of one error."""
    name = (cls_name or "").rsplit(".", 1)[-1]
    head, sep, rest = message.partition(": ")
    if sep and head.rsplit(".", 1)[-1] == name:
        message = rest
    return name, " ".join(message.split())


def describe_error(error: SerializableErrorInfo | None) -> str:
    """``Type: message`` of the error and its causes, joined by ``<-``; Dagster's wrappers are left
    out, and so is a cause whose message the text already holds. A ``Failure`` (our own
    message) is shown without its class name."""
    parts: list[str] = []
    current = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = (current.message or "").strip()
        name, text = _short(current.cls_name, message)
        wrapper = name in _WRAPPER_CLASSES or text.startswith(_WRAPPER_PREFIXES)
        if text and not wrapper and not any(text in part for part in parts):
            parts.append(text if name in ("Failure", "") else f"{name}: {text}")
        current = current.cause or current.context
    return " <- ".join(parts) or (" ".join((error.message or "").split()) if error else "failed")


def _metadata_text(metadata: dict) -> str:
    items = {k: getattr(v, "value", v) for k, v in metadata.items()}
    text = json.dumps(items, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + " ..."


def run_problems(instance: dg.DagsterInstance, run_id: str) -> list[Problem]:
    """Every failed step (its underlying error), every resource that could not start (its error)
    and every failed asset check (its metadata) of a run; when there is none of these, the run's
    own failure (e.g. run config Dagster rejected when the run began).

    A step that failed after retries is described by the error that made it fail.
    """
    records = instance.get_records_for_run(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.RESOURCE_INIT_FAILURE,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.RUN_FAILURE,
        },
    ).records
    problems: list[Problem] = []
    run_failures: list[Problem] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error if event.step_failure_data else None
            problems.append(Problem(run_id, event.step_key or "run", describe_error(error)))
        elif event.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE:
            error = getattr(event.event_specific_data, "error", None)
            where = f"{event.step_key} (a resource could not start)" if event.step_key else "resources"
            problems.append(Problem(run_id, where, describe_error(error)))
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                run_failures.append(Problem(run_id, "run", describe_error(error)))
        else:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                continue
            severity = getattr(evaluation.severity, "value", evaluation.severity)
            where = f"check {evaluation.asset_key.to_user_string()}.{evaluation.check_name} ({severity})"
            problems.append(Problem(run_id, where, _metadata_text(evaluation.metadata)))
    return problems or run_failures


def run_retries(instance: dg.DagsterInstance, run_id: str) -> list[tuple[int, Problem]]:
    """Each step retry of a run so far, as (storage id, the error that caused it and the wait)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records
    out = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        wait = getattr(data, "seconds_to_wait", None)
        when = f"; retrying in {wait:.0f} s" if wait is not None else "; retrying"
        out.append((record.storage_id, Problem(run_id, event.step_key or "run", describe_error(data.error) + when)))
    return out
