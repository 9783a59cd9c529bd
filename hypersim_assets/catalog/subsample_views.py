"""Every-N-th-frame views of the frame index, as Parquet under ``<dataset>/views/``,
and the reference converter's split text lists in the dataset folder.

Which frames are eligible: included in the public release and not on the
reference's blacklist (:mod:`hypersim_assets.catalog.blacklist`). Selection uses only the
metadata, so a view never shifts while the dataset is partly converted.

View files (one per kind and N; rows grouped by split in the order train, valid,
test; column ``split`` so ``pd.read_parquet(path, filters=[("split", "==", "train")])``
reads one split):

- ``views/every_nth_split_N<N>.parquet``: the reference's semantics. Per split, the
  eligible frames in metadata order (the split CSV's order, across the whole
  split), then every N-th of them starting with the first (positions 0, N, 2N, ...).
- ``views/every_nth_per_trajectory_N<N>.parquet``: per camera trajectory, its
  eligible frames in frame_id order, then every N-th starting with the first: even
  coverage, every trajectory with an eligible frame contributes at least one.

Each view row carries ``status`` (from the index) and ``present`` (converted and
every output file on disk when the view was written).

Text lists (the reference's names and format): ``train.txt``, ``valid.txt``,
``test.txt`` for N = 1 (always written, as the reference always writes them) and
``<split>_every_<N>th.txt`` for other N (literally ``th``: ``train_every_2th.txt``).
One frame per line, ``<scene>/<cam>/<NNNN>`` without extension, each line ending in
``\\n``: the ``every_nth_split`` view's rows for that split and N, restricted to
frames present on disk. Files for N values no longer configured are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hypersim_assets.catalog.frame_files import frame_files_present
from hypersim_assets.catalog.frame_index import PATH_COLUMNS, read_frame_index
from hypersim_assets.common.atomic_files import write_parquet_atomic, write_text_atomic
from hypersim_assets.common.frame_facts import STATUS_CONVERTED

ENV_SUBSAMPLES = "HYPERSIM_SUBSAMPLES"
DEFAULT_SUBSAMPLES: tuple[int, ...] = (1, 10)
SPLITS: tuple[str, ...] = ("train", "valid", "test")  # the reference's split names, in its order
VIEWS_DIR = "views"
KIND_SPLIT = "every_nth_split"
KIND_TRAJECTORY = "every_nth_per_trajectory"
VIEW_KINDS: tuple[str, ...] = (KIND_SPLIT, KIND_TRAJECTORY)


def _dict(index_type: pa.DataType) -> pa.DataType:
    return pa.dictionary(index_type, pa.string())


VIEW_SCHEMA = pa.schema(
    [
        ("split", _dict(pa.int8())),
        ("scene", _dict(pa.int16())),
        ("camera", _dict(pa.int8())),
        ("frame_id", pa.int16()),
        ("stem", pa.string()),  # the text-list line
        ("scene_class", _dict(pa.int8())),
        ("metadata_row", pa.uint32()),
        ("status", _dict(pa.int8())),
        ("present", pa.bool_()),
    ]
)


# The largest every-N-th value: a larger one overflows the views' integer arithmetic.
MAX_SUBSAMPLE = 2**31 - 1


def parse_subsamples(text: str | None) -> tuple[int, ...]:
    """``"1,2,5,10,20"`` to ``(1, 2, 5, 10, 20)`` (sorted, unique); empty or None gives DEFAULT_SUBSAMPLES.

    Raises ValueError for anything but comma-separated integers from 1 to MAX_SUBSAMPLE.
    """
    if text is None or not text.strip():
        return DEFAULT_SUBSAMPLES
    values = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"{ENV_SUBSAMPLES} must be comma-separated integers >= 1, got {text!r}") from None
        if value < 1:
            raise ValueError(f"{ENV_SUBSAMPLES} values must be >= 1, got {value} in {text!r}")
        if value > MAX_SUBSAMPLE:
            raise ValueError(f"{ENV_SUBSAMPLES} values must be at most {MAX_SUBSAMPLE}, got {value} in {text!r}")
        values.add(value)
    return tuple(sorted(values)) or DEFAULT_SUBSAMPLES


def subsamples_with_full(subsamples: Iterable[int]) -> tuple[int, ...]:
    """The N values to write: the given ones plus 1 (the full lists), sorted and unique."""
    values = {int(n) for n in subsamples} | {1}
    if min(values) < 1:
        raise ValueError(f"subsample values must be >= 1, got {sorted(values)}")
    return tuple(sorted(values))


def view_name(kind: str, n: int) -> str:
    """``every_nth_split_N10`` etc.: a view's name (its file stem)."""
    if kind not in VIEW_KINDS:
        raise ValueError(f"unknown view kind {kind!r}; expected one of {VIEW_KINDS}")
    return f"{kind}_N{int(n)}"


def view_path(dataset_root: Path, kind: str, n: int) -> Path:
    """Where a view lives: ``<dataset>/views/<kind>_N<N>.parquet``."""
    return Path(dataset_root) / VIEWS_DIR / f"{view_name(kind, n)}.parquet"


def text_list_name(split: str, n: int) -> str:
    """The reference's text-list file name: ``train.txt`` for N = 1, ``train_every_10th.txt`` otherwise."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return f"{split}.txt" if int(n) == 1 else f"{split}_every_{int(n)}th.txt"


# Index columns that decide eligibility and order (eligible_frames), and those write_views reads:
# the view columns, eligibility, and the paths that say whether a frame is present.
ELIGIBILITY_COLUMNS: tuple[str, ...] = ("included_in_public_release", "blacklisted", "split", "metadata_row")
INDEX_COLUMNS_FOR_VIEWS: tuple[str, ...] = tuple(
    dict.fromkeys([f.name for f in VIEW_SCHEMA if f.name != "present"] + list(ELIGIBILITY_COLUMNS))
) + tuple(PATH_COLUMNS.values())


# -- selection (pure) ---------------------------------------------------------------------


def eligible_frames(index: pd.DataFrame) -> pd.DataFrame:
    """Index rows the reference lists: included, with a split, not blacklisted; in metadata order."""
    mask = index["included_in_public_release"].to_numpy(dtype=bool) & ~index["blacklisted"].to_numpy(dtype=bool)
    mask &= index["split"].notna().to_numpy()
    rows = index[mask]
    return rows.sort_values("metadata_row", kind="stable")


def _split_rank(split: pd.Series) -> np.ndarray:
    order = {s: i for i, s in enumerate(SPLITS)}
    ranks = split.astype(object).map(order)
    if ranks.isna().any():
        raise ValueError(f"index holds unknown split(s) {sorted(set(split[ranks.isna()].astype(str)))}")
    return ranks.to_numpy(dtype=np.int8)


def _split_order(eligible: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Eligible rows grouped by split (train, valid, test), metadata order within, and each row's
    position within its split: every N-th is ``position % N == 0`` (the order does not depend on N)."""
    rows = eligible.assign(_rank=_split_rank(eligible["split"])).sort_values(["_rank", "metadata_row"], kind="stable")
    position = rows.groupby("_rank", sort=False).cumcount().to_numpy()
    return rows.drop(columns="_rank"), position


def _trajectory_order(eligible: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Eligible rows ordered by split, scene, camera, frame_id, and each row's position within its trajectory."""
    rows = eligible.assign(
        _rank=_split_rank(eligible["split"]),
        _scene=eligible["scene"].astype(str),
        _camera=eligible["camera"].astype(str),
    ).sort_values(["_rank", "_scene", "_camera", "frame_id"], kind="stable")
    position = rows.groupby(["_scene", "_camera"], sort=False).cumcount().to_numpy()
    return rows.drop(columns=["_rank", "_scene", "_camera"]), position


def _every_nth(order: tuple[pd.DataFrame, np.ndarray], n: int) -> pd.DataFrame:
    """Every N-th row of an order (rows, position of each in its group); ValueError if N < 1."""
    if n < 1:
        raise ValueError(f"subsample must be >= 1, got {n}")
    rows, position = order
    return rows[position % n == 0]


def select_every_nth_split(index: pd.DataFrame, n: int) -> pd.DataFrame:
    """Every N-th eligible frame of each split in metadata order (the reference's subsample).

    Returns index rows, grouped by split (train, valid, test), metadata order within.
    """
    return _every_nth(_split_order(eligible_frames(index)), n)


def select_every_nth_per_trajectory(index: pd.DataFrame, n: int) -> pd.DataFrame:
    """Every N-th eligible frame of each camera trajectory in frame_id order, starting with its first.

    Returns index rows ordered by split (train, valid, test), scene, camera, frame_id.
    """
    return _every_nth(_trajectory_order(eligible_frames(index)), n)


def _view_table(rows: pd.DataFrame, present: np.ndarray) -> pa.Table:
    arrays = []
    for f in VIEW_SCHEMA:
        if f.name == "present":
            arrays.append(pa.array(present, pa.bool_()))
            continue
        values = rows[f.name]
        if pa.types.is_dictionary(f.type):
            arrays.append(
                pa.array(values.astype(object).to_numpy(), pa.string(), from_pandas=True)
                .dictionary_encode()
                .cast(f.type)
            )
        else:
            arrays.append(pa.array(values.to_numpy(), f.type))
    return pa.Table.from_arrays(arrays, schema=VIEW_SCHEMA)


def read_view(dataset_root: Path, kind: str, n: int, **read_kwargs) -> pd.DataFrame:
    """One view as a DataFrame (kwargs, e.g. ``filters``, go to ``pd.read_parquet``)."""
    path = view_path(dataset_root, kind, n)
    if not path.is_file():
        raise FileNotFoundError(f"view {path} does not exist; materialise subsample_views first")
    return pd.read_parquet(path, **read_kwargs)


# -- writing ------------------------------------------------------------------------------


@dataclass
class ViewsResult:
    """What :func:`write_views` wrote.

    ``summary``: ``{"views": {name: {split: rows}}, "present": {name: {split: rows}},
    "text_lists": {file name: lines}}``. The checks of what was written read it back
    from disk (:mod:`hypersim_assets.catalog.index_checks`).
    """

    summary: dict
    paths: list[str] = field(default_factory=list)


def _per_split(rows: pd.DataFrame) -> dict[str, int]:
    counts = rows["split"].astype(object).value_counts()
    return {s: int(counts.get(s, 0)) for s in SPLITS}


def write_views(
    dataset_root: Path, subsamples: Iterable[int] = DEFAULT_SUBSAMPLES, index: pd.DataFrame | None = None
) -> ViewsResult:
    """Write both view kinds for every N (plus N = 1) and the reference's text lists.

    ``index``: the frame index as a DataFrame; default: read ``<dataset>/frame_index.parquet``
    (its INDEX_COLUMNS_FOR_VIEWS, all that is used).
    Presence on disk is looked up once for all eligible converted frames. Every file is
    written atomically.
    """
    dataset_root = Path(dataset_root)
    if index is None:
        index = read_frame_index(dataset_root, columns=list(INDEX_COLUMNS_FOR_VIEWS))
    index = index.reset_index(drop=True)
    values = subsamples_with_full(subsamples)
    converted = index["status"].astype(object).to_numpy() == STATUS_CONVERTED
    eligible_rows = eligible_frames(index)
    eligible = index.index.isin(eligible_rows.index)
    present_all = frame_files_present(index, dataset_root, rows=converted & eligible)
    # Each kind's order is computed once; every N picks from it.
    orders = {KIND_SPLIT: _split_order(eligible_rows), KIND_TRAJECTORY: _trajectory_order(eligible_rows)}

    summary: dict = {"views": {}, "present": {}, "text_lists": {}}
    paths: list[str] = []
    split_views: dict[int, pd.DataFrame] = {}
    for n in values:
        for kind in (KIND_SPLIT, KIND_TRAJECTORY):
            rows = _every_nth(orders[kind], n)
            present = present_all[rows.index.to_numpy()]
            table = _view_table(rows, present)
            path = write_parquet_atomic(table, view_path(dataset_root, kind, n))
            paths.append(str(path))
            name = view_name(kind, n)
            frame = table.to_pandas()
            summary["views"][name] = _per_split(frame)
            summary["present"][name] = _per_split(frame[frame["present"]])
            if kind == KIND_SPLIT:
                split_views[n] = frame
        for split in SPLITS:
            frame = split_views[n]
            stems = frame.loc[(frame["split"].astype(object) == split) & frame["present"], "stem"]
            text = "".join(f"{s}\n" for s in stems)
            name = text_list_name(split, n)
            path = dataset_root / name
            write_text_atomic(text, path)
            paths.append(str(path))
            summary["text_lists"][name] = len(stems)
    return ViewsResult(summary, paths)


def read_views(dataset_root: Path, subsamples: Iterable[int], **read_kwargs) -> dict[str, pd.DataFrame]:
    """Both kinds of view for each N (plus 1), keyed by view name (kwargs, e.g. ``columns``, go to ``read_view``)."""
    return {
        view_name(kind, n): read_view(dataset_root, kind, n, **read_kwargs)
        for n in subsamples_with_full(subsamples)
        for kind in VIEW_KINDS
    }


def read_split_views(dataset_root: Path, subsamples: Iterable[int], **read_kwargs) -> Mapping[int, pd.DataFrame]:
    """The ``every_nth_split`` view for each N (plus 1), keyed by N (kwargs, e.g. ``columns``, go to ``read_view``)."""
    return {n: read_view(dataset_root, KIND_SPLIT, n, **read_kwargs) for n in subsamples_with_full(subsamples)}
