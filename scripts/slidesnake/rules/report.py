"""Rules of ``workflow/rules/report.smk``: metrics and figures of datasets and cohorts, provenance."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..audit import AUDIT_TABLE
from ..entries import unit
from ..evaluation import (
    ITEMS_TABLE,
    PERFORMANCE_TABLE,
    evaluation_tables,
    performance_table,
    read_predictions,
    read_slide_scores,
    scored_entries,
    with_left_out_note,
)
from ..intervals import interval_text
from ..io import atomic_path, read_json
from ..metrics import CLASS_AUC_TABLE, CONFUSION_TABLE, METRICS_TABLE, class_aucs, confusion_table
from ..model.history import HISTORY_TABLE
from ..plots.evaluation import confusion_figure, roc_figure, training_curves_figure
from ..provenance import write_provenance
from ..report.html import STUDY_LINKS, page
from ..settings import EvaluationSettings

log = logging.getLogger(__name__)


def evaluate(
    *,
    name: str,
    entries_tsv: str,
    prediction_tsvs: Sequence[str],
    score_jsons: Sequence[str],
    history_tsv: str,
    classes: Sequence[str],
    positive_class: str,
    threshold: float,
    evaluation: Mapping[str, Any],
    metrics_tsv: str,
    items_tsv: str,
    class_auc_tsv: str,
    confusion_tsv: str,
    confusion_png: str,
    roc_png: str,
    curves_png: str,
) -> pd.DataFrame:
    """Rule ``evaluate``: metrics with 95% CIs at every level, per-item table, class AUCs, figures.

    For a dataset (its test split is patients its model never saw) and for a labelled cohort (split
    ``external``: slides of another dataset or site). Tile- (or image-) level metrics are over the
    labelled entries, by the most probable class; slide level compares the slide score with whether
    the slide is labelled positive (any tile of the positive class, or its slide label); patient
    level takes each patient's highest score. CIs resample patients.
    """
    settings = EvaluationSettings.from_config(evaluation, where="evaluation")
    predictions = read_predictions(prediction_tsvs)
    scored = scored_entries(entries_tsv, predictions, classes)
    metrics, items = evaluation_tables(
        scored,
        read_slide_scores(score_jsons) if score_jsons else None,
        classes=classes,
        positive_class=positive_class,
        threshold=threshold,
        settings=settings,
    )
    metrics.insert(0, "dataset", name)
    metrics = with_left_out_note(metrics, scored, predictions)
    METRICS_TABLE.write(metrics, metrics_tsv)
    ITEMS_TABLE.write(items, items_tsv)
    class_auc = class_aucs(scored, classes, resamples=settings.bootstrap, seed=settings.seed)
    CLASS_AUC_TABLE.write(class_auc, class_auc_tsv)
    confusion = confusion_table(scored, classes)
    CONFUSION_TABLE.write(confusion, confusion_tsv)
    held_out = "external" if "external" in set(scored["split"]) else "test"
    what = unit(scored)
    confusion_figure(
        confusion[confusion["split"] == held_out].drop(columns="split"),
        classes,
        title=f"{name}: {held_out} {what} (rows: true; columns: most probable class)",
        path=confusion_png,
    )
    first = metrics[metrics["level"] == metrics["level"].iloc[0]]
    roc_figure(
        scored,
        first,
        positive_class=positive_class,
        threshold=threshold,
        resamples=settings.bootstrap,
        seed=settings.seed,
        title=f"{name}: ROC of {positive_class} vs the rest, {what}, by split",
        path=roc_png,
    )
    # the training of the model that predicted these entries (a cohort's: its dataset's, or its variant's)
    training_curves_figure(HISTORY_TABLE.read(history_tsv), f"{name}: training of its model", curves_png)
    return metrics


def crossval(
    *,
    dataset: str,
    oof_tsvs: Sequence[str],
    classes: Sequence[str],
    positive_class: str,
    threshold: float,
    slide_score: str,
    evaluation: Mapping[str, Any],
    metrics_tsv: str,
    oof_tsv: str,
    roc_png: str,
) -> pd.DataFrame:
    """Rule ``crossval``: out-of-fold predictions of the k fold models, their metrics and fold ROC figure.

    Metrics per fold and pooled with patient-bootstrap CIs, and the mean across folds with its SD and
    t-interval (see :mod:`slidesnake.crossval`), at every level (tile or image, slide, patient).
    """
    from ..crossval import CROSSVAL_TABLE, crossval_metrics, scored_oof
    from ..entries import OOF_TABLE
    from ..plots.evaluation import fold_roc_figure

    settings = EvaluationSettings.from_config(evaluation, where="evaluation")
    oof = pd.concat([OOF_TABLE.read(path) for path in oof_tsvs], ignore_index=True)
    scored = scored_oof(oof, classes)
    metrics = crossval_metrics(
        scored,
        classes=classes,
        positive_class=positive_class,
        threshold=threshold,
        how=slide_score,
        settings=settings,
    )
    metrics.insert(0, "dataset", dataset)
    CROSSVAL_TABLE.write(metrics, metrics_tsv)
    OOF_TABLE.write(oof, oof_tsv)
    fold_roc_figure(
        scored,
        positive_class=positive_class,
        title=f"{dataset}: {len(oof_tsvs)}-fold cross-validation, out-of-fold {unit(scored)}",
        path=roc_png,
    )
    return metrics


def cross_site(
    *,
    metrics_tsvs: Sequence[str],
    in_site_tsvs: Mapping[str, str],
    cohorts: Sequence[Mapping[str, Any]],
    table_tsv: str,
    figure_png: str,
) -> None:
    """Rule ``cross_site``: every model on another site's slides, by stain setting: table and figure.

    ``cohorts`` (one per metrics table, in order) name each cross-site cohort's ``cohort``, ``model``,
    ``slides`` and ``stain`` (see :func:`slidesnake.cross_site.cross_site_table`); ``in_site_tsvs`` map each
    model to its own dataset's metrics, the in-site reference.
    """
    from ..cross_site import CROSS_SITE_TABLE, cross_site_table
    from ..plots.evaluation import cross_site_figure

    metrics = {
        row["cohort"]: METRICS_TABLE.read(path) for row, path in zip(cohorts, metrics_tsvs, strict=True)
    }
    in_site = {model: METRICS_TABLE.read(path) for model, path in in_site_tsvs.items()}
    table = cross_site_table(metrics, cohorts, in_site=in_site)
    CROSS_SITE_TABLE.write(table, table_tsv)
    cross_site_figure(table, path=figure_png)
    for row in table.itertuples():
        auc = interval_text(row.auc, row.auc_ci_low, row.auc_ci_high, row.auc_ci_method)
        log.info("model %s on %s, stain %s: AUC %s", row.model, row.cohort, row.stain, auc)


def performance(*, metrics_tsvs: Sequence[str], models: Mapping[str, str], out_tsv: str) -> None:
    """Rule ``performance``: every model on every held-out set side by side (test splits, cohorts, a MIL
    dataset's out-of-fold predictions)."""
    table = performance_table([METRICS_TABLE.read(path) for path in metrics_tsvs], models)
    PERFORMANCE_TABLE.write(table, out_tsv)


def provenance(
    *,
    config: Mapping[str, Any],
    sheet_paths: Sequence[str],
    audit_tsvs: Sequence[str],
    annotation_files: Sequence[str],
    workflow_dir: str,
    runs_log: str,
    out_json: str,
) -> None:
    """Rule ``provenance``: what this run was made with (:func:`slidesnake.provenance.write_provenance`).

    The slide files' paths and checksums come from the audit table (none without slides).
    """
    slides = [row for path in audit_tsvs for row in AUDIT_TABLE.read(path).to_dict("records")]
    write_provenance(
        config=config,
        sheet_paths=sheet_paths,
        slides=slides,
        annotation_files=annotation_files,
        workflow_dir=workflow_dir,
        runs_log=runs_log,
        out_json=out_json,
    )


def dataset_page(
    *,
    name: str,
    model: str,
    metrics_tsv: str,
    items_tsv: str,
    class_auc_tsv: str,
    confusion_tsv: str,
    split_tsv: str,
    leakage_json: str,
    crossval_tsvs: Sequence[str],
    out_html: str,
) -> None:
    """Rule ``dataset_page``: a dataset's or cohort's numbers as one HTML page the report shows inline."""
    from ..crossval import CROSSVAL_TABLE
    from ..report.dataset_page import dataset_sections
    from ..splits import SPLITS_TABLE

    sections = dataset_sections(
        model=model,
        metrics=METRICS_TABLE.read(metrics_tsv),
        class_auc=CLASS_AUC_TABLE.read(class_auc_tsv),
        confusion=CONFUSION_TABLE.read(confusion_tsv),
        crossval=CROSSVAL_TABLE.read(crossval_tsvs[0]) if crossval_tsvs else None,
        items=ITEMS_TABLE.read(items_tsv),
        splits=SPLITS_TABLE.read(split_tsv),
        leakage=read_json(leakage_json),
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(page(f"{name}: evaluation", sections, STUDY_LINKS), encoding="utf-8")


def study_pages(
    *,
    audit_tsvs: Sequence[str],
    thumbnails: Sequence[str],
    masks: Sequence[str],
    performance_tsv: str,
    cross_site_tsvs: Sequence[str],
    cross_site_pngs: Sequence[str],
    regimes_tsvs: Sequence[str],
    provenance_json: str,
    datasets: Sequence[Mapping[str, Any]],
    cohorts: Sequence[Mapping[str, Any]],
    homes: Mapping[str, str],
    summary_html: str,
    qc_html: str,
    provenance_html: str,
) -> None:
    """Rule ``study_pages``: the study summary, the QC cohort page and the provenance as HTML pages."""
    from PIL import Image

    from ..cross_site import CROSS_SITE_TABLE
    from ..plots.slides import qc_thumbnail
    from ..regimes import REGIMES_TABLE
    from ..report.study_page import provenance_sections, qc_sections, summary_sections

    audit = pd.concat([AUDIT_TABLE.read(path) for path in audit_tsvs] or [AUDIT_TABLE.empty()])
    sections = summary_sections(
        audit=audit,
        performance=PERFORMANCE_TABLE.read(performance_tsv),
        cross_site=[
            (CROSS_SITE_TABLE.read(tsv), Image.open(png))
            for tsv, png in zip(cross_site_tsvs, cross_site_pngs, strict=True)
        ],
        regimes=[REGIMES_TABLE.read(tsv) for tsv in regimes_tsvs],
        datasets=datasets,
        cohorts=cohorts,
        homes=homes,
    )
    images = [
        qc_thumbnail(np.asarray(Image.open(t)), np.asarray(Image.open(m)) > 0)
        for t, m in zip(thumbnails, masks, strict=True)
    ]
    evaluated = [d["dataset"] for d in datasets] + [c["cohort"] for c in cohorts if c["labelled"]]
    links = {"quality control": "qc.html", "provenance": "provenance.html"}
    links |= {f"{name}: evaluation": f"{name}/summary.html" for name in evaluated}
    back = {"study summary": "study.html"}
    with atomic_path(summary_html) as tmp:
        tmp.write_text(page("Study summary", sections, links), encoding="utf-8")
    with atomic_path(qc_html) as tmp:
        tmp.write_text(
            page("Quality control: every slide", qc_sections(audit, images, homes), back), encoding="utf-8"
        )
    with atomic_path(provenance_html) as tmp:
        tmp.write_text(
            page("Provenance", provenance_sections(read_json(provenance_json)), back), encoding="utf-8"
        )
