"""Rules of ``workflow/rules/report.smk``: metrics and figures of datasets and cohorts, provenance."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..entries import unit
from ..evaluation import evaluation_tables, read_slide_scores, scored_entries
from ..intervals import interval_text
from ..io import atomic_path, read_json, read_table, write_table
from ..metrics import class_aucs, confusion_table
from ..pages import heading, jpeg_tag, metric_warnings, page, paragraph, qc_cells, table, with_intervals
from ..plots.evaluation import confusion_figure, roc_figure, training_curves_figure
from ..provenance import write_provenance
from ..settings import EvaluationSettings

log = logging.getLogger(__name__)


def evaluate(
    *,
    name: str,
    entries_tsv: str,
    prediction_tsvs: Sequence[str],
    score_jsons: Sequence[str],
    history_tsvs: Sequence[str],
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
    scored = scored_entries(entries_tsv, prediction_tsvs, classes)
    metrics, items = evaluation_tables(
        scored,
        read_slide_scores(score_jsons) if score_jsons else None,
        classes=classes,
        positive_class=positive_class,
        threshold=threshold,
        settings=settings,
    )
    metrics.insert(0, "dataset", name)
    write_table(metrics, metrics_tsv)
    write_table(items, items_tsv)
    write_table(class_aucs(scored, classes, resamples=settings.bootstrap, seed=settings.seed), class_auc_tsv)
    confusion = confusion_table(scored, classes)
    write_table(confusion, confusion_tsv)
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
    history = read_table(history_tsvs[0]) if history_tsvs else pd.DataFrame(columns=["epoch"])
    training_curves_figure(history, f"{name}: training", curves_png)
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
    from ..crossval import crossval_metrics, scored_oof
    from ..plots.evaluation import fold_roc_figure

    settings = EvaluationSettings.from_config(evaluation, where="evaluation")
    oof = pd.concat([read_table(path, keep_default_na=False) for path in oof_tsvs], ignore_index=True)
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
    write_table(metrics, metrics_tsv)
    write_table(oof, oof_tsv)
    fold_roc_figure(
        scored,
        positive_class=positive_class,
        title=f"{dataset}: {len(oof_tsvs)}-fold cross-validation, out-of-fold {unit(scored)}",
        path=roc_png,
    )
    return metrics


def cross_site(
    *, metrics_tsvs: Sequence[str], cohorts: Sequence[Mapping[str, Any]], table_tsv: str, figure_png: str
) -> None:
    """Rule ``cross_site``: every model on another site's slides, by stain setting: table and figure.

    ``cohorts`` (one per metrics table, in order) name each cross-site cohort's ``cohort``, ``model``,
    ``slides`` and ``stain`` (see :func:`slidesnake.cross_site.cross_site_table`).
    """
    from ..cross_site import cross_site_table
    from ..plots.evaluation import cross_site_figure

    metrics = {row["cohort"]: read_table(path) for row, path in zip(cohorts, metrics_tsvs, strict=True)}
    table = cross_site_table(metrics, cohorts)
    write_table(table, table_tsv)
    cross_site_figure(table, path=figure_png)
    for row in table.itertuples():
        auc = interval_text(row.auc, row.auc_ci_low, row.auc_ci_high, row.auc_ci_method)
        log.info("model %s on %s, stain %s: AUC %s", row.model, row.cohort, row.stain, auc)


def performance(*, metrics_tsvs: Sequence[str], models: Mapping[str, str], out_tsv: str) -> None:
    """Rule ``performance``: every model on every held-out set side by side (test splits, cohorts)."""
    tables = []
    for path in metrics_tsvs:
        metrics = read_table(path)
        held_out = metrics[metrics["split"].isin(["test", "external"])]
        tables.append(held_out)
    joined = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["dataset"])
    joined.insert(0, "model", joined["dataset"].map(models))
    joined = joined.rename(columns={"dataset": "evaluated_on"})
    joined.insert(2, "validation", np.where(joined["split"] == "external", "external", "internal"))
    write_table(joined, out_tsv)


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
    slides = [
        row for path in audit_tsvs for row in read_table(path, keep_default_na=False).to_dict("records")
    ]
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
    metrics = read_table(metrics_tsv)
    validation = "external validation" if (metrics["split"] == "external").any() else "internal validation"
    sections = [paragraph(f"Model of dataset {model!r}; {validation}.", "note")]
    sections += [paragraph(text, "warning") for text in metric_warnings(metrics)]
    sections += [
        heading("Metrics, with 95% confidence intervals (their methods in ci_method)"),
        table(with_intervals(metrics.drop(columns="dataset"))),
        paragraph(
            "Tile (or image) level: the most probable class against the label; slide level: the slide score "
            "against whether the slide is labelled positive; patient level: each patient's highest score. "
            "n counts the units of the level; items are slides (or images). Intervals: Clopper-Pearson "
            "for proportions of slides and patients, the patient bootstrap otherwise; 'not estimable' "
            "where the data cannot give one (note says why), never a zero-width interval.",
            "note",
        ),
    ]
    class_auc = read_table(class_auc_tsv)
    if class_auc["class"].nunique() > 2:
        sections += [heading("One-vs-rest AUC per class"), table(with_intervals(class_auc))]
    confusion = read_table(confusion_tsv)
    sections += [heading("Confusion (rows: true class; columns: most probable class)"), table(confusion)]
    if crossval_tsvs:
        crossval = read_table(crossval_tsvs[0])
        folds = crossval.loc[~crossval["fold"].astype(str).isin(["pooled", "mean"]), "fold"].nunique()
        sections += [
            heading(f"{folds}-fold cross-validation: out-of-fold predictions of unseen patients"),
            table(with_intervals(crossval.drop(columns="dataset"))),
            paragraph(
                "Rows per fold and pooled: 95% CIs made as above; row mean: the mean of the "
                "folds, the standard deviation across folds (columns _sd) and the 95% t-interval of the "
                "mean. Each fold model stopped early on its own fold, so these lean optimistic; the test "
                "split's figures above come from the deployed model, on patients no fold model trained "
                "or stopped on.",
                "note",
            ),
        ]
    items = read_table(items_tsv, keep_default_na=False)
    sections += [heading("Per slide (or image)"), table(items)]
    splits = read_table(split_tsv, keep_default_na=False)
    shown = [
        c for c in ("item", "patient_id", "site", "label", "tiles", "group", "split", "fold") if c in splits
    ]
    leakage = read_json(leakage_json)
    verdict = "passed" if leakage.get("ok") else "FAILED"
    balance = splits.groupby(["split", "label"]).size().unstack(fill_value=0)
    balance["patients"] = splits.groupby("split")["patient_id"].nunique()
    sections += [
        heading("Split membership"),
        table(balance.reset_index(), caption="items (slides or images) per split and label, and patients"),
        paragraph(f"Leakage check {verdict}: " + json.dumps({k: v for k, v in leakage.items() if k != "ok"})),
        table(splits[shown]),
    ]
    with atomic_path(out_html) as tmp:
        tmp.write_text(page(f"{name}: evaluation", sections), encoding="utf-8")


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

    from ..plots.slides import qc_thumbnail

    audit = pd.concat([read_table(path, keep_default_na=False) for path in audit_tsvs] or [pd.DataFrame()])
    performance = read_table(performance_tsv)
    warnings = metric_warnings(performance.rename(columns={"evaluated_on": "dataset"}))
    sections = []
    excluded = audit[audit["status"] == "excluded"] if len(audit) else audit
    if len(excluded):
        sections += [
            heading(f"Excluded slides ({len(excluded)} of {len(audit)})"),
            paragraph(
                "These slides are carried through with empty outputs and left out of every split, model "
                "and metric (config on_bad_slide: skip). Fix the file or the setting named, and rerun.",
                "warning",
            ),
            table(
                excluded.assign(dataset=excluded["slide_id"].map(homes))[
                    ["slide_id", "dataset", "path", "reason"]
                ]
            ),
        ]
    sections += [heading("Datasets (one model each)"), table(pd.DataFrame(datasets))]
    if cohorts:
        sections += [
            heading("Cohorts (slides predicted with another dataset's model)"),
            table(pd.DataFrame(cohorts)),
        ]
    sections += [heading("Every model on every held-out set")]
    sections += [paragraph(text, "warning") for text in warnings]
    headline = performance[performance["level"].isin(["slide", "patient", "image", "tile"])]
    sections += [table(with_intervals(headline))]
    for tsv, png in zip(cross_site_tsvs, cross_site_pngs, strict=True):
        sections += [
            heading("Cross-site: each model at a site it never saw, by stain setting"),
            paragraph(
                "Tile-level AUC and balanced accuracy with patient-bootstrap 95% CIs (or not estimable, "
                "see note). Stain 'none': no "
                "normalization and no stain augmentation; 'macenko'/'reinhard': normalization to a target "
                "fitted on the model's training split, inside the saved model; 'hed': stain augmentation "
                "in HED space during training."
            ),
            table(with_intervals(read_table(tsv))),
            jpeg_tag(Image.open(png), "cross-site AUC by stain setting"),
        ]
    for tsv in regimes_tsvs:
        sections += [
            heading("Transfer-learning regimes: one dataset trained several ways, on its test split"),
            paragraph(
                "Regime 'model' is the dataset's own model; the others are config datasets: <name>: regimes, "
                "each trained on the same train split. Tile-level AUC and balanced accuracy with "
                "patient-bootstrap 95% CIs; training time in seconds on this machine."
            ),
            table(with_intervals(read_table(tsv))),
        ]
    if len(audit):
        readers = audit["reader"].value_counts().to_dict()
        sections += [
            heading("Slides"),
            paragraph(
                f"{len(audit)} slides; read with "
                + ", ".join(f"{n} by {reader}" for reader, n in readers.items())
                + " (tifffile: the fast path decoding the file's tiles directly; openslide otherwise)."
            ),
        ]
        flagged = audit[audit["flags"] != ""]
        if len(flagged):
            sections += [
                heading("Flagged and excluded slides"),
                table(flagged[["slide_id", "flags", "excluded"]]),
            ]
        cells = audit.assign(dataset=audit["slide_id"].map(homes))
        images = [
            qc_thumbnail(np.asarray(Image.open(t)), np.asarray(Image.open(m)) > 0)
            for t, m in zip(thumbnails, masks, strict=True)
        ]
        qc = [
            paragraph("Green: the tissue mask's outline. Red frame: excluded from the study.", "note"),
            qc_cells(cells, images),
            heading("All numbers"),
            table(audit),
        ]
    else:
        qc = [paragraph("No slides in this study (patch-folder datasets only).")]
    with atomic_path(summary_html) as tmp:
        tmp.write_text(page("Study summary", sections), encoding="utf-8")
    with atomic_path(qc_html) as tmp:
        tmp.write_text(page("Quality control: every slide", qc), encoding="utf-8")
    provenance = read_json(provenance_json)
    packages = pd.DataFrame(sorted(provenance["packages"].items()), columns=["package", "version"])
    facts = {k: v for k, v in provenance.items() if k not in ("packages", "config")}
    with atomic_path(provenance_html) as tmp:
        body = [
            heading("Run"),
            table(pd.DataFrame([{"key": k, "value": json.dumps(v)} for k, v in facts.items()])),
            heading("Packages"),
            table(packages),
            heading("Config as used"),
            f"<pre>{html.escape(json.dumps(provenance['config'], indent=2))}</pre>",
        ]
        tmp.write_text(page("Provenance", body), encoding="utf-8")
