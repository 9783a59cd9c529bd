"""Reading what went wrong in a run back from a real instance: the underlying error of a
step that exhausted its retries, a Failure with its cause, a failed blocking check, a
resource that could not start (no step failed: the run's events must still say why)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from hypersim_assets.run_failures import run_problems, run_retries


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=1, delay=0))
def flaky() -> None:
    raise ValueError("frame.0003.color.hdf5: truncated (2 of 40 bytes)")


@dg.asset
def wrapped() -> None:
    try:
        raise FileNotFoundError(2, "No such file or directory", "/src/scenes/ai_001_001.zip")
    except FileNotFoundError as exc:
        raise dg.Failure("scene ai_001_001: not found", allow_retries=False) from exc


@dg.asset(check_specs=[dg.AssetCheckSpec("consistent", asset="checked", blocking=True)])
def checked() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="consistent",
                passed=False,
                metadata={"problems": dg.MetadataValue.json(["ai_001_001: no row in camera parameters"])},
            )
        ]
    )


class Unreachable(dg.ConfigurableResource):
    folder: str = "/nowhere"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        raise FileNotFoundError(2, "No such file or directory", self.folder)


class Bounded(dg.ConfigurableResource):
    workers: int = Field(default=0, ge=0)


@dg.asset
def needs_folder(store: Unreachable) -> None:
    pass


@dg.asset
def needs_workers(pool: Bounded) -> None:
    pass


def _failed_run(
    instance: dg.DagsterInstance,
    asset: dg.AssetsDefinition,
    resources: dict | None = None,
    run_config: dict | None = None,
) -> str:
    result = dg.materialize(
        [asset], instance=instance, raise_on_error=False, resources=resources, run_config=run_config
    )
    assert not result.success
    return result.run_id


def test_exhausted_retries_show_the_underlying_error_not_the_wrapper():
    with dg.instance_for_test() as instance:
        run_id = _failed_run(instance, flaky)
        (problem,) = run_problems(instance, run_id)
        assert problem.where == "flaky"
        assert problem.message == "ValueError: frame.0003.color.hdf5: truncated (2 of 40 bytes)"
        (retry,) = [p for _, p in run_retries(instance, run_id)]
        assert retry.message.startswith("ValueError: frame.0003.color.hdf5") and "retrying in 0 s" in retry.message


def test_failure_shows_its_message_then_its_cause_once():
    with dg.instance_for_test() as instance:
        (problem,) = run_problems(instance, _failed_run(instance, wrapped))
        assert problem.message.startswith("scene ai_001_001: not found <- FileNotFoundError: ")
        assert "/src/scenes/ai_001_001.zip" in problem.message
        assert "Failure" not in problem.message and "dagster._core" not in problem.message


def test_failed_blocking_check_shows_its_problems():
    with dg.instance_for_test() as instance:
        problems = run_problems(instance, _failed_run(instance, checked))
        check = next(p for p in problems if p.where.startswith("check "))
        assert check.where == "check checked.consistent (ERROR)"
        assert "ai_001_001: no row in camera parameters" in check.message


def test_a_resource_that_cannot_start_is_named_with_its_error():
    with dg.instance_for_test() as instance:
        run_id = _failed_run(instance, needs_folder, {"store": Unreachable()})
        (problem,) = run_problems(instance, run_id)
        assert problem.where == "needs_folder (a resource could not start)"
        assert problem.message.startswith("FileNotFoundError: ") and "/nowhere" in problem.message
        assert "resource_fn" not in problem.message


def test_a_config_value_the_resource_rejects_names_the_field():
    with dg.instance_for_test() as instance:
        config = {"resources": {"pool": {"config": {"workers": -1}}}}
        (problem,) = run_problems(instance, _failed_run(instance, needs_workers, {"pool": Bounded()}, config))
        assert "ValidationError" in problem.message and "workers" in problem.message
        assert "greater than or equal to 0" in problem.message
