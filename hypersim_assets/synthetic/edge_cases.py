"""Where the mirror plants the real data's edge cases: excluded frames and trajectories, an
included frame whose files are missing, a frame with NaN depth at valid pixels, and a frame-0
orientation that is not a rotation; and the summary of what was planted, for tests to check.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypersim_assets.synthetic.metadata_csvs import REASON_BAD_TRAJECTORY, REASON_CONTENT_FLAGGED

Frame = tuple[str, str, int]  # (scene, camera, frame id)


@dataclass(frozen=True)
class EdgeCasePlan:
    """Which frames carry which planted case; a case is ``None`` when the spec is too small to hold it."""

    excluded: dict[Frame, str]  # frame -> exclude_reason (files absent from the zip)
    bad_trajectory: tuple[str, str] | None  # (scene, camera) excluded as a whole
    included: list[Frame]  # frames in the public release, in metadata order
    bad_rotation: Frame | None  # its camera's frame-0 orientation is scaled and skewed
    missing: Frame | None  # included, but its files are absent
    nan_frame: Frame | None  # NaN depth at a few valid pixels

    def absent(self, scene: str) -> frozenset[tuple[str, int]]:
        """(camera, frame) pairs of ``scene`` whose files the zip leaves out."""
        frames = list(self.excluded) + ([self.missing] if self.missing else [])
        return frozenset((c, f) for (s, c, f) in frames if s == scene)


def plan_edge_cases(names: list[str], cameras: tuple[str, ...], frames: int) -> EdgeCasePlan:
    """Place each planted case on the first frame that can hold it, without two cases on one frame."""
    excluded: dict[Frame, str] = {}
    bad_trajectory = (names[-1], cameras[-1]) if len(cameras) >= 2 else None
    if bad_trajectory:
        for f in range(frames):
            excluded[(*bad_trajectory, f)] = REASON_BAD_TRAJECTORY
    if frames >= 3:
        excluded[(names[0], cameras[0], frames - 1)] = REASON_CONTENT_FLAGGED
    included = [(s, c, f) for s in names for c in cameras for f in range(frames) if (s, c, f) not in excluded]
    included_set = set(included)

    def first(cands: list[Frame], taken: set[Frame]) -> Frame | None:
        return next((x for x in cands if x in included_set and x not in taken), None)

    bad_rotation = first([(s, c, 0) for s in names for c in cameras], set())
    taken = {bad_rotation} if bad_rotation else set()
    missing = first([(names[0], cameras[0], 1)] + [x for x in included if x[2] != 0], taken)
    if missing:
        taken.add(missing)
    nan_pref = [(names[min(2, len(names) - 1)], cameras[0], frames // 2)]
    nan_frame = first(nan_pref + sorted(included, key=lambda x: (x[0] == names[0], x)), taken)
    return EdgeCasePlan(excluded, bad_trajectory, included, bad_rotation, missing, nan_frame)


def _where(x: Frame | None) -> dict[str, object] | None:
    return None if x is None else {"scene": x[0], "camera": x[1], "frame_id": x[2]}


def edge_case_summary(
    plan: EdgeCasePlan,
    names: list[str],
    tilt_shift_scenes: list[str],
    row_of: dict[str, str],
    by_scene: dict[str, dict[str, object]],
) -> dict[str, object]:
    """``MirrorSummary.edge_cases`` from the plan and what each scene's writer reported."""
    nan_frame, bad_rotation, bad_trajectory = plan.nan_frame, plan.bad_rotation, plan.bad_trajectory
    return {
        "tilt_shift_scenes": tilt_shift_scenes,
        "camera_parameter_source_rows": dict(row_of),
        "excluded_frames": [
            {"scene": s, "camera": c, "frame_id": f, "exclude_reason": r}
            for (s, c, f), r in sorted(plan.excluded.items())
        ],
        "excluded_trajectory": None
        if bad_trajectory is None
        else {"scene": bad_trajectory[0], "camera": bad_trajectory[1], "exclude_reason": REASON_BAD_TRAJECTORY},
        "missing_frame": _where(plan.missing),
        "nan_depth_at_valid_pixels": None
        if nan_frame is None
        else {**_where(nan_frame), "pixels": by_scene[nan_frame[0]]["nan_pixels"]},  # type: ignore[dict-item]
        "invalid_rotation_frame_0": None
        if bad_rotation is None
        else {**_where(bad_rotation), "max_abs_RtR_minus_I": by_scene[bad_rotation[0]]["frame_0_orientation_error"]},  # type: ignore[dict-item]
        "instance_ids_above_255": {s: by_scene[s]["instance_ids_above_255"] for s in names},
        "semantic_without_instance": {s: by_scene[s]["semantic_without_instance"] for s in names},
        "unlabelled_objects": {s: by_scene[s]["unlabelled_objects"] for s in names},
        "void_frames": [v for s in names for v in by_scene[s]["void_frames"]],  # type: ignore[attr-defined]
    }
