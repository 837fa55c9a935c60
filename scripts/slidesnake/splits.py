"""Patient-grouped, stratified, seeded train/validation/test splits and k folds, with a leakage check.

Items are what a split assigns: slides for slide datasets, image files for
patch-folder datasets. Items that share a patient, or have byte-identical
content, form one group and always land on the same side.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from .errors import SplitError
from .settings import Duplicates, SplitSettings
from .tables import StoredTable

SPLITS = ("train", "val", "test")

#: ``results/splits/{dataset}.tsv`` (rules ``split_slides``, ``split_patches``; a cohort's by
#: ``split_cohort``): one row per item (slide or image) with its label, patient, content hash, leakage
#: group, split and fold (-1: none); a slide's labelled ``tiles`` and ``site``; a patch dataset's further
#: labels CSV columns.
SPLITS_TABLE = StoredTable(
    paths=("results/splits/{name}.tsv",),
    columns={
        "item": "text",
        "label": "text",
        "tiles": "number",
        "patient_id": "text",
        "site": "text",
        "content_hash": "text",
        "group": "number",
        "split": "text",
        "fold": "number",
    },
    optional=frozenset(("tiles", "site")),
    more="text",
)

#: ``results/splits/{dataset}.balance.tsv``: per split, the count of each class (one column per class,
#: tiles or images), its items and its patients.
BALANCE_TABLE = StoredTable(
    paths=("results/splits/{dataset}.balance.tsv",),
    columns={"split": "text", "items": "number", "patients": "number"},
    more="number",
)


def identical_sets(items: pd.DataFrame, identical: list[list[str]] | None = None) -> list[list[str]]:
    """Sets of items with identical content: equal ``content_hash``, plus the given sets.

    Parameters
    ----------
    items : pandas.DataFrame
        Columns ``item`` and optionally ``content_hash``.
    identical : list of list of str, optional
        Further sets of items known to share content (e.g. slides sharing a tile).

    Returns
    -------
    list of list of str
        Each set sorted, only sets of two or more items.
    """
    sets = []
    if "content_hash" in items:
        sets += [sorted(map(str, same["item"])) for _, same in items.groupby("content_hash") if len(same) > 1]
    sets += [sorted(set(map(str, group))) for group in identical or [] if len(set(group)) > 1]
    return sets


def leakage_groups(
    items: pd.DataFrame, *, duplicates: Duplicates, identical: list[list[str]] | None = None
) -> pd.Series:
    """Group items that must stay together: same patient, or identical content.

    Parameters
    ----------
    items : pandas.DataFrame
        Columns ``item``, ``patient_id`` and optionally ``content_hash``.
    duplicates : str
        ``merge`` joins the groups of identical items; ``error`` refuses
        identical items of different patients.
    identical : list of list of str, optional
        Further sets of identical items (see :func:`identical_sets`).

    Returns
    -------
    pandas.Series
        A group id per item (aligned with ``items``).

    Raises
    ------
    SplitError
        With ``duplicates='error'`` when two items of different patients are identical.
    """
    parent = list(range(len(items)))
    position = {str(item): k for k, item in enumerate(items["item"])}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(positions: list[int]) -> None:
        root = find(positions[0])
        for other in positions[1:]:
            parent[find(other)] = root

    for _, positions in pd.Series(range(len(items))).groupby(items["patient_id"].to_numpy()):
        join(list(positions))
    for same_items in identical_sets(items, identical):
        positions = [position[item] for item in same_items if item in position]
        same = items.iloc[positions]
        if duplicates == "error" and same["patient_id"].nunique() > 1:
            raise SplitError(
                f"identical content in items {list(same['item'])} of patients "
                f"{sorted(same['patient_id'].unique())} (config 'splits: duplicates: error')"
            )
        join(positions)
    roots = [find(i) for i in range(len(items))]
    return pd.Series(pd.factorize(pd.Series(roots))[0], index=items.index, name="group")


def _fold_of(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    """Assign each item a fold number with group-aware, stratified k-fold."""
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    fold = np.full(len(labels), -1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for k, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
            fold[held] = k
    return fold


def make_splits(
    items: pd.DataFrame,
    *,
    settings: SplitSettings,
    dataset: str,
    identical: list[list[str]] | None = None,
    sites: pd.Series | None = None,
) -> pd.DataFrame:
    """Split a dataset's items into train/val/test (and k folds), grouped and stratified.

    Parameters
    ----------
    items : pandas.DataFrame
        Columns ``item``, ``patient_id``, ``label`` and optionally ``content_hash``.
    settings : SplitSettings
        ``fractions``: wanted share of groups for train, val and test (reached
        as closely as whole groups allow); ``folds``: with 2 or more, the
        non-test items are also split into this many folds (column ``fold``;
        test items get fold -1); ``seed``: the same items and seed give the
        same splits; ``duplicates``: how identical items are treated (see
        :func:`leakage_groups`).
    dataset : str
        For error messages.
    identical : list of list of str, optional
        Further sets of identical items (see :func:`identical_sets`).
    sites : pandas.Series, optional
        The site of each item (aligned with ``items``), for site-preserving folds
        (see :func:`development_folds`).

    Returns
    -------
    pandas.DataFrame
        ``items`` with ``group``, ``split`` and ``fold`` columns, sorted by item.

    Raises
    ------
    SplitError
        When a class has too few patient groups for the requested split.
    """
    fractions, folds, seed = settings.fractions, settings.folds, settings.seed
    order = items["item"].argsort(kind="stable").to_numpy()
    table = items.iloc[order].reset_index(drop=True)
    sites = None if sites is None else sites.iloc[order].reset_index(drop=True)
    table["group"] = leakage_groups(table, duplicates=settings.duplicates, identical=identical).to_numpy()
    wanted = [s for s in SPLITS if fractions.of(s) > 0]
    needed = max(len(wanted), folds)
    groups_per_class = table.groupby("label")["group"].nunique()
    short = groups_per_class[groups_per_class < needed]
    if len(short):
        detail = ", ".join(f"'{c}' has {n}" for c, n in short.items())
        raise SplitError(
            f"dataset {dataset!r}: too few patients per class for splits {wanted} and {folds} fold(s): "
            f"{detail} (needs at least {needed} patients in every class)"
        )
    labels = table["label"].astype(str).to_numpy()
    groups = table["group"].to_numpy()
    split = np.full(len(table), "train", dtype=object)
    rest = np.ones(len(table), bool)
    remaining_share = 1.0
    for name in ("test", "val"):
        share = fractions.of(name)
        if share <= 0:
            continue
        if share >= remaining_share - 1e-9:  # all the rest (a pretrained model's dataset: all test)
            split[rest] = name
            rest[:] = False
            remaining_share = 0.0
            continue
        n_splits = max(2, round(remaining_share / share))
        sub = np.flatnonzero(rest)
        fold = _fold_of(labels[sub], groups[sub], min(n_splits, len(set(groups[sub]))), seed)
        split[sub[fold == 0]] = name
        rest[sub[fold == 0]] = False
        remaining_share -= share
    table["split"] = split
    table["fold"] = development_folds(table, settings=settings, dataset=dataset, sites=sites)
    return table


def development_folds(
    table: pd.DataFrame, *, settings: SplitSettings, dataset: str, sites: pd.Series | None = None
) -> np.ndarray:
    """The cross-validation fold of each item: -1 for test items, 0 for all others without folds.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``item``, ``label``, ``group`` (see :func:`leakage_groups`) and ``split``.
    settings : SplitSettings
        ``folds`` (k; 1: every non-test item in fold 0), ``seed`` and ``site_column`` (for messages).
    dataset : str
        For error messages.
    sites : pandas.Series, optional
        The site of each item (aligned with ``table``): all patients of a site share a fold.

    Returns
    -------
    numpy.ndarray
        A fold per item, stratified by label, never splitting a group (or a site).

    Raises
    ------
    SplitError
        When there are fewer sites than folds.
    """
    fold = np.full(len(table), -1)
    development = np.flatnonzero(table["split"].to_numpy() != "test")
    if settings.folds < 2:
        fold[development] = 0
        return fold
    groups = table["group"].to_numpy()
    if sites is not None:
        found = sorted(set(map(str, sites.to_numpy()[development])))
        if len(found) < settings.folds:
            msg = (
                f"dataset {dataset!r}: {len(found)} site(s) {found} in column {settings.site_column!r} for "
                f"{settings.folds} folds; site-preserving folds need at least as many sites as folds "
                "(config 'splits: site_column', 'splits: folds')"
            )
            raise SplitError(msg)
        groups = _site_groups(table, sites)
    labels = table["label"].astype(str).to_numpy()
    fold[development] = _fold_of(labels[development], groups[development], settings.folds, settings.seed)
    return fold


def _site_groups(table: pd.DataFrame, sites: pd.Series) -> np.ndarray:
    """Groups joined when they share a site (a patient seen at two sites joins both)."""
    by_site = pd.DataFrame({"item": table["item"].to_numpy(), "patient_id": sites.astype(str).to_numpy()})
    same_group = [list(map(str, part["item"])) for _, part in table.groupby("group")]
    return leakage_groups(by_site, duplicates="merge", identical=same_group).to_numpy()


def leakage_report(splits: pd.DataFrame, identical: list[list[str]] | None = None) -> dict:
    """Check a split table for patients and identical content on more than one side.

    Parameters
    ----------
    splits : pandas.DataFrame
        Columns ``item``, ``patient_id``, ``split`` and optionally ``content_hash``.
    identical : list of list of str, optional
        Further sets of identical items (see :func:`identical_sets`).

    Returns
    -------
    dict
        ``patients_on_several_sides`` and ``duplicates_on_several_sides`` (lists;
        both empty for a clean split), ``duplicate_items`` (sets of identical
        items) and ``ok``.
    """
    sides = splits.groupby("patient_id")["split"].nunique()
    leaking_patients = sorted(map(str, sides[sides > 1].index))
    split_of = dict(zip(splits["item"].astype(str), splits["split"], strict=True))
    duplicate_items = identical_sets(splits, identical)
    leaking_duplicates = [names for names in duplicate_items if len({split_of.get(n) for n in names}) > 1]
    return {
        "ok": not leaking_patients and not leaking_duplicates,
        "patients_on_several_sides": leaking_patients,
        "duplicates_on_several_sides": leaking_duplicates,
        "duplicate_items": duplicate_items,
    }


def class_balance(rows: pd.DataFrame) -> pd.DataFrame:
    """Count rows (items or tiles) per split and label: one row per split, one column per label."""
    table = rows.groupby(["split", "label"]).size().unstack(fill_value=0)
    table.columns.name = None
    return table.reindex([s for s in SPLITS if s in table.index]).reset_index()


def slides_sharing_tiles(tile_hashes: list[pd.DataFrame]) -> list[list[str]]:
    """Sets of slides that hold a tile with identical pixels (e.g. a re-scanned or re-saved copy).

    Parameters
    ----------
    tile_hashes : list of pandas.DataFrame
        Per slide, columns ``item`` (the slide) and ``hash`` (its tiles' pixel hashes).

    Returns
    -------
    list of list of str
        Each set sorted, only sets of two or more slides.
    """
    if not tile_hashes:
        return []
    hashes = pd.concat(tile_hashes, ignore_index=True).drop_duplicates()
    shared = hashes.groupby("hash")["item"].agg(lambda names: tuple(sorted(names)))
    return [list(names) for names in sorted(set(shared[shared.map(len) > 1]))]
