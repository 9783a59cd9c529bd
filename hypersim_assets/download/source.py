"""Where Hypersim comes from: one definition of a *source* used by the CLI, the
assets and the tests.

A source is a base location (an ``http(s)://`` or ``file://`` URL, or a plain
directory) holding the three metadata CSVs and ``scenes/<scene>.zip``. The
default source is upstream itself: the pinned metadata addresses with their
sha256 and Apple's scene zips.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from hypersim_assets.common.layout import CAMERA_PARAMETERS_CSV, SPLIT_CSV, TRAJECTORIES_CSV
from hypersim_assets.download.errors import InvalidSource

UPSTREAM = "upstream"
UPSTREAM_SCENES_URL = "https://docs-assets.developer.apple.com/ml-research/datasets/hypersim/v1/scenes"
_RAW = "https://raw.githubusercontent.com/apple/ml-hypersim"
# name -> (pinned address, sha256); facts from ../shared/hypersim-reference/README.md
UPSTREAM_METADATA: dict[str, tuple[str, str]] = {
    SPLIT_CSV: (
        f"{_RAW}/6cbaa80207f44a312654e288cf445016c84658a1/evermotion_dataset/analysis/{SPLIT_CSV}",
        "47b7cce12f4659ffa31cf05e8fbf2aee3d69e1929d07b5ea25506603b69d5ce6",
    ),
    TRAJECTORIES_CSV: (
        f"{_RAW}/6cbaa80207f44a312654e288cf445016c84658a1/evermotion_dataset/analysis/{TRAJECTORIES_CSV}",
        "cba47312efd3d63e9f8f8164fb634cf57faa5fa7a905368174d1e6c7bc625e4f",
    ),
    CAMERA_PARAMETERS_CSV: (
        f"{_RAW}/76dbac9b2ee15faf2d677e87db2c0203fc3cc024/contrib/mikeroberts3000/{CAMERA_PARAMETERS_CSV}",
        "0b40e0884ba2458e7bdcdbb27de46a4ec6eacbfbbb4ef0d70188d78098cebdc9",
    ),
}

ENV_SOURCE = "HYPERSIM_SOURCE"
ENV_DATA_ROOT = "HYPERSIM_DATA_ROOT"
DEFAULT_DATA_ROOT = "./hypersim-data"


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (unchanged when it has none)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Location:
    """One file of a source: a URL (``http``/``https``) or a local path, and the sha256 it must have, if pinned."""

    url: str | None = None
    path: Path | None = None
    sha256: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def __str__(self) -> str:
        """The URL with its password redacted, or the path: safe for logs, metadata and provenance."""
        return redact_url(self.url) if self.url is not None else str(self.path)

    def __repr__(self) -> str:
        return f"Location({self!s}, sha256={self.sha256})"


@dataclass(frozen=True)
class HypersimSource:
    """A parsed source. ``base`` is ``"upstream"``, an http(s) URL without trailing slash, or a local directory."""

    base: str

    @classmethod
    def parse(cls, text: str | None) -> HypersimSource:
        """Parse ``upstream`` / ``http(s)://...`` / ``file://...`` / a directory path (empty means upstream).

        Raises :class:`~hypersim_assets.download.errors.InvalidSource` (permanent: retrying
        reads the same text) for another scheme or an http(s) URL without a host.
        """
        text = (text or "").strip()
        if not text or text == UPSTREAM:
            return cls(UPSTREAM)
        parsed = urlparse(text)
        if parsed.scheme in ("http", "https"):
            if not parsed.hostname:
                raise InvalidSource(
                    f"source {redact_url(text)!r} names no host: use {parsed.scheme}://HOST[:PORT]/PATH"
                )
            return cls(text.rstrip("/"))
        if parsed.scheme == "file":
            return cls(str(Path(unquote(parsed.path)).resolve()))
        if parsed.scheme and len(parsed.scheme) > 1:
            raise InvalidSource(
                f"unsupported source scheme {parsed.scheme!r} in {redact_url(text)!r}: "
                "use upstream, http(s)://, file:// or a directory"
            )
        return cls(str(Path(text).expanduser().resolve()))

    @classmethod
    def from_env(cls) -> HypersimSource:
        """The source named by ``HYPERSIM_SOURCE`` (upstream when unset)."""
        return cls.parse(os.environ.get(ENV_SOURCE))

    @property
    def is_upstream(self) -> bool:
        return self.base == UPSTREAM

    @property
    def is_remote(self) -> bool:
        return self.is_upstream or self.base.startswith(("http://", "https://"))

    def metadata(self, name: str) -> Location:
        """Location of one of the three metadata CSVs; pinned with its sha256 for upstream."""
        if self.is_upstream:
            url, sha = UPSTREAM_METADATA[name]
            return Location(url=url, sha256=sha)
        if self.is_remote:
            return Location(url=f"{self.base}/{name}")
        return Location(path=Path(self.base) / name)

    def scene_zip(self, scene: str) -> Location:
        """Location of ``<scene>.zip``."""
        if self.is_upstream:
            return Location(url=f"{UPSTREAM_SCENES_URL}/{scene}.zip")
        if self.is_remote:
            return Location(url=f"{self.base}/scenes/{scene}.zip")
        return Location(path=Path(self.base) / "scenes" / f"{scene}.zip")

    def unpacked_scene_dir(self, scene: str) -> Path | None:
        """For a local source that already holds unpacked scenes (``<base>/<scene>/`` or ``<base>/scenes/<scene>/``), that folder."""
        if self.is_remote:
            return None
        for candidate in (Path(self.base) / scene, Path(self.base) / "scenes" / scene):
            if candidate.is_dir():
                return candidate
        return None

    def redacted(self) -> str:
        """``base`` with the password of a URL's user info replaced by ``***``."""
        return redact_url(self.base)

    def __str__(self) -> str:
        """The redacted base: safe for logs, metadata, run tags and provenance."""
        return self.redacted()

    def __repr__(self) -> str:
        return f"HypersimSource({self.redacted()!r})"


def data_root_from_env() -> Path:
    """The output root: ``HYPERSIM_DATA_ROOT`` or ``./hypersim-data``."""
    return Path(os.environ.get(ENV_DATA_ROOT) or DEFAULT_DATA_ROOT)
