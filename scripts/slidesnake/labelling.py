"""Rule functions of stages 4 and 5: a label per tile, and patient-grouped splits checked for leakage."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .io import read_json, read_table, write_json, write_table
from .slide import SlideInfo
from .tiling import read_tile_index, store_attrs

log = logging.getLogger(__name__)


def label_slide(
    store: str, info_json: str, labels: dict, annotations: str | None, slide_label: str | None, out_tsv: str
) -> None:
    """Rule ``label_tiles``: a label per tile from annotations or from the slide's label."""
    from .annotations import label_tiles, read_annotations

    info = SlideInfo.from_dict(read_json(info_json))
    index = read_tile_index(store)
    classes = labels["classes"]
    if labels["source"] == "annotations":
        regions = read_annotations(annotations, info.slide_id) if annotations else []
        tile_size_level0 = store_attrs(store)["tile_size"] * info.level0_per_target
        table = label_tiles(
            index,
            tile_size_level0,
            regions,
            labels["annotation_classes"],
            labels.get("unannotated"),
            labels["min_fraction"],
            info.slide_id,
            annotations,
        )
    else:
        if slide_label not in classes:
            raise ValueError(
                f"slide {info.slide_id!r}: sheet column 'label' = {slide_label!r} is not one of "
                f"the dataset's classes {classes}"
            )
        table = index.assign(label=slide_label)
    table.insert(0, "slide_id", info.slide_id)
    counts = table["label"].replace("", "(excluded)").value_counts().to_dict()
    log.info("%s: tile labels %s", info.slide_id, counts)
    write_table(table, out_tsv)


def split_slides(
    dataset: str,
    patients: dict[str, str],
    label_tsvs: list[str],
    info_jsons: list[str],
    splits: dict,
    positive_class: str,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split_slides``: patient-grouped train/val/test splits of a slide dataset, checked for leakage.

    A slide's stratification label is ``positive_class`` when any of its tiles
    has it, else its most common tile label. Slides with the same file checksum
    are identical content and stay on one side.
    """
    from .splits import make_splits

    rows, tile_labels, tile_hashes = [], [], []
    for path in label_tsvs:
        tiles = read_table(path, keep_default_na=False)
        slide_id = str(tiles["slide_id"].iloc[0]) if len(tiles) else Path(path).name.split(".")[0]
        labelled = tiles[tiles["label"] != ""]
        if (labelled["label"] == positive_class).any():
            label = positive_class
        elif len(labelled):
            label = labelled["label"].mode().iloc[0]
        else:
            label = "(no tiles)"
        rows.append({"item": slide_id, "label": label, "tiles": len(labelled)})
        tile_labels.append(pd.DataFrame({"item": slide_id, "label": labelled["label"].to_numpy()}))
        if "content_hash" in tiles:
            tile_hashes.append(pd.DataFrame({"item": slide_id, "hash": tiles["content_hash"].to_numpy()}))
    items = pd.DataFrame(rows)
    items["patient_id"] = items["item"].map(patients)
    checksums = {info["slide_id"]: info["sha256"] for info in map(read_json, info_jsons)}
    items["content_hash"] = items["item"].map(checksums)
    identical = _slides_sharing_tiles(tile_hashes)
    table = make_splits(
        items, splits["fractions"], splits["folds"], splits["seed"], dataset, splits["duplicates"], identical
    )
    tiles = pd.concat(tile_labels, ignore_index=True).merge(table[["item", "split"]], on="item")
    _write_splits(dataset, table, tiles, out_tsv, leakage_json, balance_tsv, identical)
    return table


def _slides_sharing_tiles(tile_hashes: list[pd.DataFrame]) -> list[list[str]]:
    """Sets of slides that hold a tile with identical pixels (e.g. a re-scanned or re-saved copy)."""
    if not tile_hashes:
        return []
    hashes = pd.concat(tile_hashes, ignore_index=True).drop_duplicates()
    shared = hashes.groupby("hash")["item"].agg(lambda names: tuple(sorted(names)))
    return [list(names) for names in sorted(set(shared[shared.map(len) > 1]))]


def split_patches(
    dataset: str,
    patches: dict,
    classes: list[str],
    splits: dict,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split_patches``: splits of a patch-folder dataset, grouped by patient and identical pixels.

    With ``patches: split_column`` the split given in the labels CSV is kept
    (values train/val/test, any case; ``validation`` counts as val) and only checked.
    """
    from .patches import read_patch_dataset
    from .splits import SplitError, leakage_groups, make_splits

    items = read_patch_dataset(
        dataset,
        patches.get("root"),
        patches.get("labels_csv"),
        patches.get("patient_pattern"),
        classes,
        patches.get("label_pattern"),
    )
    column = patches.get("split_column")
    if column:
        if column not in items:
            raise SplitError(
                f"dataset {dataset!r}: labels CSV has no column {column!r} (config 'split_column')"
            )
        given = items[column].str.lower().replace({"validation": "val", "valid": "val"})
        unknown = sorted(set(given) - {"train", "val", "test"})
        if unknown:
            raise SplitError(
                f"dataset {dataset!r}: column {column!r} has values {unknown}; use train/val/test"
            )
        table = items.assign(group=leakage_groups(items, splits["duplicates"]).to_numpy(), split=given)
        table["fold"] = np.where(table["split"] == "test", -1, 0)
    else:
        table = make_splits(
            items, splits["fractions"], splits["folds"], splits["seed"], dataset, splits["duplicates"]
        )
    _write_splits(dataset, table, table[["item", "split", "label"]], out_tsv, leakage_json, balance_tsv)
    return table


def _write_splits(
    dataset: str,
    table: pd.DataFrame,
    units: pd.DataFrame,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
    identical: list[list[str]] | None = None,
) -> None:
    """Check a split table for leakage; write it, the leakage report and the class balance of ``units``."""
    from .splits import SplitError, class_balance, leakage_report

    report = leakage_report(table, identical)
    report["dataset"] = dataset
    if not report["ok"]:
        raise SplitError(
            f"dataset {dataset!r}: leakage between splits: patients {report['patients_on_several_sides']}, "
            f"identical items {report['duplicates_on_several_sides']}"
        )
    if report["duplicate_items"]:
        log.warning("%s: identical items kept on one side: %s", dataset, report["duplicate_items"])
    write_table(table, out_tsv)
    write_json(report, leakage_json)
    per_split = table.groupby("split").agg(items=("item", "nunique"), patients=("patient_id", "nunique"))
    write_table(class_balance(units).merge(per_split, left_on="split", right_index=True), balance_tsv)
    log.info("%s: patients per split %s", dataset, per_split["patients"].to_dict())
