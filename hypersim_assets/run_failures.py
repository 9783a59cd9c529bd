"""What went wrong in a run, read back from the instance's event log: the underlying error
of each failed step (never Dagster's "Exceeded max_retries" wrapper) and the recorded
problems of each failed asset check."""

from __future__ import annotations

import json
from dataclasses import dataclass

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

# Errors that only wrap the one that caused them.
_WRAPPER_CLASSES = frozenset(
    {
        "RetryRequested",
        "DagsterExecutionStepExecutionError",
        "DagsterMaxRetriesExceededError",
        "DagsterUserCodeExecutionError",
    }
)
_WRAPPER_PREFIXES = ("Exceeded max_retries", "Error occurred while executing")
MAX_DETAIL_CHARS = 1500


@dataclass(frozen=True)
class Problem:
    """One failed step or failed check of a run, with the message a user needs."""

    run_id: str
    where: str  # step key, or "check <asset>.<check>"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def describe_error(error: SerializableErrorInfo | None) -> str:
    """``Type: message`` of the error and its causes, wrappers left out, joined by ``<-``."""
    parts: list[str] = []
    current = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = (current.message or "").strip()
        wrapper = current.cls_name in _WRAPPER_CLASSES or message.startswith(_WRAPPER_PREFIXES)
        if not wrapper and message:
            # Dagster's messages usually start with the class name already ("ValueError: ...").
            name = current.cls_name or ""
            parts.append(message if not name or name in message.split(":", 1)[0] else f"{name}: {message}")
        current = current.cause or current.context
    return " <- ".join(parts) or ((error.message or "").strip() if error else "failed")


def _metadata_text(metadata: dict) -> str:
    items = {k: getattr(v, "value", v) for k, v in metadata.items()}
    text = json.dumps(items, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + " ..."


def run_problems(instance: dg.DagsterInstance, run_id: str) -> list[Problem]:
    """Every failed step (its underlying error) and every failed asset check (its metadata) of a run.

    A step that failed after retries is described by the error that made it fail.
    """
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION},
    ).records
    problems: list[Problem] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error if event.step_failure_data else None
            problems.append(Problem(run_id, event.step_key or "run", describe_error(error)))
        else:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                continue
            severity = getattr(evaluation.severity, "value", evaluation.severity)
            where = f"check {evaluation.asset_key.to_user_string()}.{evaluation.check_name} ({severity})"
            problems.append(Problem(run_id, where, _metadata_text(evaluation.metadata)))
    return problems
