"""Rules of ``workflow/rules/labels.smk``: tile labels, patient-grouped checked splits, entries."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..audit import AUDIT_TABLE
from ..cohorts import training_overlaps
from ..entries import ENTRIES_TABLE, TILE_LABELS_TABLE, build_entries
from ..errors import SplitError, listing
from ..io import write_json
from ..patches import read_patch_dataset
from ..quarantine import QUARANTINED_TABLE, labels_or_quarantine, quarantine_table
from ..settings import LabelSettings, PatchSettings, SplitSettings
from ..splits import (
    BALANCE_TABLE,
    SPLITS_TABLE,
    class_balance,
    development_folds,
    leakage_groups,
    leakage_report,
    make_splits,
    slides_sharing_tiles,
)
from ..store.tiles import TileStore

log = logging.getLogger(__name__)


def label_tiles(
    *,
    slides: Sequence[str],
    stores: Sequence[str],
    labels: Mapping[str, Any],
    annotation_files: Mapping[str, str],
    slide_labels: Mapping[str, str | None],
    out_dir: str,
    on_bad_slide: str,
) -> dict[str, str]:
    """Rule ``label_tiles``: a label per tile of every slide of a dataset, one table per slide.

    A slide whose annotations cannot be used (missing or unreadable file, a class the dataset does
    not map, no region on the slide) is, with ``on_bad_slide: skip``, quarantined: its table labels
    none of its tiles, and it is listed with the reason in the folder's quarantine table
    (:mod:`slidesnake.quarantine`), which rule ``audit`` reads (the slide is then ``excluded`` in
    ``results/slides.tsv``, so out of the splits, training and metrics); the other slides are
    labelled. With ``fail`` the job fails.

    Parameters
    ----------
    slides, stores : sequence of str
        The dataset's slides and their tile stores.
    labels : mapping
        The dataset's ``labels`` config.
    annotation_files : mapping
        Slide -> its annotation file (slides without one: none, so no regions).
    slide_labels : mapping
        Slide -> its sheet ``label`` (for ``source: slide``).
    out_dir : str
        The folder of tables written, ``<slide>.tsv`` each, and :data:`~slidesnake.quarantine.QUARANTINE`.
    on_bad_slide : {'skip', 'fail'}
        Config ``on_bad_slide``.

    Returns
    -------
    dict
        Quarantined slide -> reason.
    """
    settings = LabelSettings.from_config(labels, where="labels")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    quarantined = {}
    for slide_id, store in zip(slides, stores, strict=True):
        table, reason = labels_or_quarantine(
            TileStore(store),
            settings,
            annotation_path=annotation_files.get(slide_id),
            slide_label=slide_labels.get(slide_id),
            on_bad_slide=on_bad_slide,
        )
        if reason:
            quarantined[slide_id] = reason
        else:
            counts = table["label"].replace("", "(excluded)").value_counts().to_dict()
            log.info("%s: tile labels %s", slide_id, counts)
        TILE_LABELS_TABLE.write(table, label_table(out_dir, slide_id))
    rows = pd.DataFrame({"slide_id": list(quarantined), "reason": list(quarantined.values())})
    QUARANTINED_TABLE.write(rows, quarantine_table(out_dir))
    if quarantined:
        log.warning(
            "%d slide(s) quarantined for their annotations: %s", len(quarantined), ", ".join(quarantined)
        )
    return quarantined


def label_table(labels_dir: str, slide_id: str) -> str:
    """The tile labels table of a slide in its dataset's labels folder (rule ``label_tiles``)."""
    return str(Path(labels_dir) / f"{slide_id}.tsv")


def split_slides(
    *,
    dataset: str,
    slides: Sequence[str],
    patients: Sequence[str],
    sites: Sequence[str] | None,
    label_tsvs: Sequence[str],
    audit_tsv: str,
    splits: Mapping[str, Any],
    positive_class: str,
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split_slides``: patient-grouped train/val/test splits of a slide dataset, checked for leakage.

    A slide's stratification label is ``positive_class`` when any of its tiles
    has it, else its most common tile label. Slides with the same file checksum,
    or sharing a tile with identical pixels, are identical content and stay on one side.
    ``sites`` (the sheet's ``splits: site_column``, or None) keeps each site's patients in one fold.
    The slides' status and file checksums come from the audit table (``results/slides.tsv``).
    """
    settings = SplitSettings.from_config(splits, where="splits")
    audit = _audit(audit_tsv)
    excluded = _excluded(audit, slides)
    usable = [k for k, slide_id in enumerate(slides) if slide_id not in excluded]
    if not usable:
        where = f"dataset {dataset!r}: every slide is excluded (results/slides.tsv says why)"
        raise SplitError(listing(where, [f"{slide_id}: {reason}" for slide_id, reason in excluded.items()]))
    rows, tile_labels_, tile_hashes = _slide_items(
        [slides[k] for k in usable], [label_tsvs[k] for k in usable], positive_class
    )
    items = pd.DataFrame(rows)
    items["patient_id"] = items["item"].map(dict(zip(slides, patients, strict=True)))
    checksums = audit["sha256"].to_dict()
    items["content_hash"] = items["item"].map(checksums)
    identical = slides_sharing_tiles(tile_hashes)
    site_of = dict(zip(slides, sites, strict=True)) if sites is not None else None
    table = make_splits(
        items,
        settings=settings,
        dataset=dataset,
        identical=identical,
        sites=items["item"].map(site_of) if site_of else None,
    )
    if site_of:
        table.insert(table.columns.get_loc("patient_id") + 1, "site", table["item"].map(site_of))
    tiles = pd.concat(tile_labels_, ignore_index=True).merge(table[["item", "split"]], on="item")
    table = _with_excluded(table, excluded, dict(zip(slides, patients, strict=True)), checksums)
    _write_splits(dataset, table, tiles, out_tsv, leakage_json, balance_tsv, identical)
    return table


def _audit(audit_tsv: str) -> pd.DataFrame:
    """The audit table (rule ``audit``) by slide id."""
    return AUDIT_TABLE.read(audit_tsv).set_index("slide_id")


def _excluded(audit: pd.DataFrame, slides: Sequence[str]) -> dict[str, str]:
    """Those of ``slides`` that the audit table says are excluded, with the reason, in their order."""
    rows = audit.loc[list(slides)]
    return rows.loc[rows["status"] == "excluded", "reason"].to_dict()


def _with_excluded(
    table: pd.DataFrame,
    excluded: Mapping[str, str],
    patients: Mapping[str, str],
    checksums: Mapping[str, str],
) -> pd.DataFrame:
    """The split table with the excluded slides added as split ``excluded`` (no group, no fold)."""
    if not excluded:
        return table
    rows = pd.DataFrame(
        {
            "item": list(excluded),
            "label": "(excluded)",
            "tiles": 0,
            "patient_id": [patients[slide_id] for slide_id in excluded],
            "content_hash": [checksums.get(slide_id, "") for slide_id in excluded],
            "group": -1,
            "split": "excluded",
            "fold": -1,
        }
    )
    log.warning("%d slide(s) excluded from the splits: %s", len(excluded), ", ".join(list(excluded)[:20]))
    return pd.concat([table, rows[table.columns]], ignore_index=True)


def _slide_items(
    slides: Sequence[str], label_tsvs: Sequence[str], positive_class: str
) -> tuple[list[dict], list[pd.DataFrame], list[pd.DataFrame]]:
    """Per slide: its item row (slide label, labelled tiles), its tile labels and its tile hashes.

    A slide's label is ``positive_class`` when any of its tiles has it, else its most common tile
    label, ``(no tiles)`` without labelled tiles.
    """
    rows, tile_labels_, tile_hashes = [], [], []
    for slide_id, label_tsv in zip(slides, label_tsvs, strict=True):
        tiles = TILE_LABELS_TABLE.read(label_tsv)
        labelled = tiles[tiles["label"] != ""]
        if (labelled["label"] == positive_class).any():
            label = positive_class
        elif len(labelled):
            label = labelled["label"].mode().iloc[0]
        else:
            label = "(no tiles)"
        rows.append({"item": slide_id, "label": label, "tiles": len(labelled)})
        tile_labels_.append(pd.DataFrame({"item": slide_id, "label": labelled["label"].to_numpy()}))
        tile_hashes.append(pd.DataFrame({"item": slide_id, "hash": tiles["content_hash"].to_numpy()}))
    return rows, tile_labels_, tile_hashes


def split_cohort(
    *,
    cohort: str,
    model: str,
    slides: Sequence[str],
    patients: Sequence[str],
    label_tsvs: Sequence[str],
    audit_tsv: str,
    model_split_tsv: str,
    model_slides: Sequence[str],
    positive_class: str,
    out_tsv: str,
    leakage_json: str,
) -> pd.DataFrame:
    """Rule ``split_cohort``: a cohort's slides as one ``external`` split, refused if in the model's data.

    A cohort slide of a patient in the model's split table, or with the same file checksum as a
    slide the model was trained on, is a :class:`SplitError` naming both (the workflow checks
    patients and files before any job; this checks the checksums the model's slides really had).
    """
    if label_tsvs:
        rows, _, _ = _slide_items(slides, label_tsvs, positive_class)
    else:
        rows = [{"item": slide_id, "label": "(unlabelled)", "tiles": 0} for slide_id in slides]
    items = pd.DataFrame(rows, columns=["item", "label", "tiles"])
    items["patient_id"] = list(patients)
    audit = _audit(audit_tsv)
    checksums = audit["sha256"].to_dict()
    items["content_hash"] = items["item"].map(checksums)
    trained = SPLITS_TABLE.read(model_split_tsv)
    theirs = {checksums[slide]: slide for slide in model_slides}
    identical = [
        (slide, theirs[digest])
        for slide, digest in zip(items["item"], items["content_hash"], strict=True)
        if digest in theirs
    ]
    problems = training_overlaps(
        items.rename(columns={"item": "slide_id"}),
        trained.rename(columns={"item": "slide_id"}),
        identical,
        model=model,
    )
    if problems:
        msg = f"cohort {cohort!r} overlaps the training data of its model: " + "; ".join(problems[:20])
        raise SplitError(msg)
    table = items.assign(group=pd.factorize(items["patient_id"])[0], split="external", fold=-1)
    excluded = _excluded(audit, slides)
    table.loc[table["item"].isin(list(excluded)), ["label", "group", "split"]] = [
        "(excluded)",
        -1,
        "excluded",
    ]
    SPLITS_TABLE.write(table, out_tsv)
    report = {
        "ok": True,
        "cohort": cohort,
        "model": model,
        "slides": len(items),
        "patients": int(items["patient_id"].nunique()),
        "model_patients_compared": int(trained["patient_id"].nunique()),
        "model_slides_compared": len(theirs),
        "excluded_slides": list(excluded),
    }
    write_json(report, leakage_json)
    log.info(
        "%s: %d slides of %d patients, none in the data of model %s",
        cohort,
        len(items),
        items["patient_id"].nunique(),
        model,
    )
    return table


def split_patches(
    *,
    dataset: str,
    patches: Mapping[str, Any],
    classes: Sequence[str],
    splits: Mapping[str, Any],
    out_tsv: str,
    leakage_json: str,
    balance_tsv: str,
) -> pd.DataFrame:
    """Rule ``split_patches``: splits of a patch-folder dataset, grouped by patient and identical pixels.

    With ``patches: split_column`` the split given in the labels CSV is kept
    (values train/val/test, any case; ``validation`` counts as val) and only checked;
    with ``splits: folds`` >= 2 its non-test images are split into folds.
    ``splits: site_column`` names a labels CSV column of sites for site-preserving folds.
    """
    settings = SplitSettings.from_config(splits, where="splits")
    folder = PatchSettings.from_config(patches, where=f"datasets: {dataset}: patches")
    items = read_patch_dataset(dataset, patches=folder, classes=tuple(classes))
    sites = None
    if settings.folds >= 2 and settings.site_column:
        if settings.site_column not in items:
            msg = (
                f"dataset {dataset!r}: labels CSV has no column {settings.site_column!r} "
                "(config 'splits: site_column')"
            )
            raise SplitError(msg)
        sites = items[settings.site_column].astype(str)
    column = folder.split_column
    if column:
        if column not in items:
            msg = f"dataset {dataset!r}: labels CSV has no column {column!r} (config 'patches: split_column')"
            raise SplitError(msg)
        given = items[column].str.lower().replace({"validation": "val", "valid": "val"})
        unknown = sorted(set(given) - {"train", "val", "test"})
        if unknown:
            msg = f"dataset {dataset!r}: column {column!r} has values {unknown}; use train/val/test"
            raise SplitError(msg)
        groups = leakage_groups(items, duplicates=settings.duplicates)
        table = items.assign(group=groups.to_numpy(), split=given)
        table["fold"] = development_folds(table, settings=settings, dataset=dataset, sites=sites)
    else:
        table = make_splits(items, settings=settings, dataset=dataset, sites=sites)
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
    """Write a split table, its leakage report and the class balance of ``units``."""
    report = _check_leakage(dataset, table[table["split"] != "excluded"], identical)
    report["excluded_slides"] = table.loc[table["split"] == "excluded", "item"].tolist()
    if report["duplicate_items"]:
        log.warning("%s: identical items kept on one side: %s", dataset, report["duplicate_items"])
    SPLITS_TABLE.write(table, out_tsv)
    write_json(report, leakage_json)
    per_split = table.groupby("split").agg(items=("item", "nunique"), patients=("patient_id", "nunique"))
    BALANCE_TABLE.write(class_balance(units).merge(per_split, left_on="split", right_index=True), balance_tsv)
    log.info("%s: patients per split %s", dataset, per_split["patients"].to_dict())


def _check_leakage(dataset: str, table: pd.DataFrame, identical: list[list[str]] | None) -> dict:
    """The leakage report of a split table; leakage is a :class:`SplitError`."""
    report = leakage_report(table, identical)
    report["dataset"] = dataset
    if not report["ok"]:
        msg = (
            f"dataset {dataset!r}: leakage between splits: patients {report['patients_on_several_sides']}, "
            f"identical items {report['duplicates_on_several_sides']}"
        )
        raise SplitError(msg)
    return report


def entries(
    *,
    split_tsv: str,
    classes: Sequence[str],
    slides: Sequence[str],
    label_tsvs: Sequence[str],
    stores: Sequence[str],
    out_tsv: str,
) -> None:
    """Rule ``entries``: the dataset's labelled model inputs (tiles or images) with split and patient."""
    table = build_entries(
        SPLITS_TABLE.read(split_tsv),
        classes=classes,
        slides=slides,
        label_tsvs=label_tsvs,
        stores=stores,
    )
    log.info("%d entries: %s", len(table), table.groupby(["split", "label"]).size().to_dict())
    ENTRIES_TABLE.write(table, out_tsv)
