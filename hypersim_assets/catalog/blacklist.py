"""The reference converter's blacklist: trajectories it still converts but leaves
out of its split text lists because they harm training (no RGB, missing textures,
no useful labels). Facts taken from the reference's ``HypersimMeta.BLACKLIST``;
no test-split trajectory is on it.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_CAMERAS = "*"


@dataclass(frozen=True)
class BlacklistEntry:
    """One blacklisted trajectory (``camera``) or whole scene (``camera == "*"``)."""

    scene: str
    camera: str
    reason: str


# In the reference's order; one entry per scene, as in its dict.
BLACKLIST: tuple[BlacklistEntry, ...] = (
    BlacklistEntry("ai_003_001", "cam_00", "no rgb"),
    BlacklistEntry("ai_004_009", "cam_01", "no rgb"),
    BlacklistEntry("ai_013_001", ALL_CAMERAS, "outdoor columns, no useful rgb, depth or labels"),
    BlacklistEntry("ai_015_006", ALL_CAMERAS, "missing textures in rgb"),
    BlacklistEntry("ai_023_008", "cam_01", "hall, only ceiling labelled"),
    BlacklistEntry("ai_026_020", ALL_CAMERAS, "hallway, only wall/floor labelled"),
    BlacklistEntry("ai_023_009", ALL_CAMERAS, "hall, no useful trajectories or labels"),
    BlacklistEntry("ai_038_007", ALL_CAMERAS, "transit station, missing textures, no useful labels"),
    BlacklistEntry("ai_023_004", "cam_01", "hall, only wall labelled"),
    BlacklistEntry("ai_023_006", ALL_CAMERAS, "staircase, almost all pixels void"),
    BlacklistEntry("ai_026_013", ALL_CAMERAS, "hall, most pixels void"),
    BlacklistEntry("ai_026_018", ALL_CAMERAS, "hall, most pixels void"),
    BlacklistEntry("ai_046_001", ALL_CAMERAS, "living room, missing textures in rgb"),
    BlacklistEntry("ai_048_004", ALL_CAMERAS, "bedroom, rgb not realistic"),
    BlacklistEntry("ai_053_005", ALL_CAMERAS, "lecture theater (val split), missing textures in rgb"),
)

_BY_TRAJECTORY: dict[tuple[str, str], str] = {(e.scene, e.camera): e.reason for e in BLACKLIST}


def blacklist_reason(scene: str, camera: str) -> str | None:
    """Why the reference leaves trajectory ``scene``/``camera`` out of its lists, or None if it keeps it.

    A whole-scene entry (``*``) covers every camera of the scene; a camera entry only that camera.
    """
    reason = _BY_TRAJECTORY.get((scene, camera))
    if reason is None:
        reason = _BY_TRAJECTORY.get((scene, ALL_CAMERAS))
    return reason


def is_blacklisted(scene: str, camera: str) -> bool:
    """True if the reference leaves this trajectory out of its split lists."""
    return blacklist_reason(scene, camera) is not None
