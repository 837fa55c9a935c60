"""Figures of a dataset's evaluation: ROC with its confidence band, confusion matrix, curves, t-SNE."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import auc, roc_curve

from ..intervals import interval_text
from . import save

#: False-positive rates the ROC band is drawn at.
FPR_GRID = np.linspace(0, 1, 101)


def _roc_band(
    truth: np.ndarray, score: np.ndarray, patients: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """2.5th and 97.5th percentiles of the true-positive rate at :data:`FPR_GRID`, resampling patients."""
    codes, unique = pd.factorize(pd.Series(patients, dtype=str))
    groups = [np.flatnonzero(codes == k) for k in range(len(unique))]
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(resamples):
        index = np.concatenate([groups[k] for k in rng.integers(0, len(groups), len(groups))])
        t, s = truth[index], score[index]
        if 0 < t.sum() < len(t):
            fpr, tpr, _ = roc_curve(t, s)
            curves.append(np.interp(FPR_GRID, fpr, tpr))
    if not curves:
        return np.full((2, len(FPR_GRID)), np.nan)
    return np.percentile(np.asarray(curves), [2.5, 97.5], axis=0)


def roc_figure(
    scored: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    positive_class: str,
    threshold: float,
    resamples: int,
    seed: int,
    title: str,
    path: str,
) -> None:
    """ROC of the positive class per split, with its patient-bootstrap 95% band and the operating point.

    Parameters
    ----------
    scored : pandas.DataFrame
        Entries with ``split``, ``label``, ``patient_id`` and ``p_<positive_class>``.
    metrics : pandas.DataFrame
        The entry-level rows of the metrics table (AUC and CI per split, for the legend).
    positive_class : str
        The class scored.
    threshold : float
        The operating point marked on each curve (entries called positive at this probability).
    resamples, seed : int
        The bootstrap of the band.
    title, path : str
        Figure title and the PNG to write.
    """
    fig, ax = plt.subplots(figsize=(5.6, 5))
    row_of = metrics.set_index("split")
    for k, (split, part) in enumerate(scored.groupby("split", sort=False)):
        truth = (part["label"] == positive_class).to_numpy(int)
        score = part[f"p_{positive_class}"].to_numpy(float)
        if not 0 < truth.sum() < len(truth):
            continue
        colour = plt.cm.tab10.colors[k % 10]
        fpr, tpr, _ = roc_curve(truth, score)
        row = row_of.loc[split]
        auc_text = interval_text(
            row["auc"], row["auc_ci_low"], row["auc_ci_high"], row.get("auc_ci_method", "")
        )
        label = f"{split}: AUC {auc_text}; {int(row['n'])} entries, {int(row['patients'])} patient(s)"
        ax.plot(fpr, tpr, color=colour, label=label)
        low, high = _roc_band(truth, score, part["patient_id"].to_numpy(), resamples, seed)
        ax.fill_between(FPR_GRID, low, high, color=colour, alpha=0.15, lw=0)
        called = score >= threshold
        ax.plot(
            (called & (truth == 0)).sum() / max(1, (truth == 0).sum()),
            (called & (truth == 1)).sum() / max(1, truth.sum()),
            "o",
            color=colour,
            markeredgecolor="black",
        )
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xlabel(f"false-positive rate (1 - specificity), not {positive_class}")
    ax.set_ylabel(f"true-positive rate (sensitivity), {positive_class}")
    ax.legend(
        fontsize=7, loc="lower right", title=f"dot: P({positive_class}) >= {threshold}", title_fontsize=7
    )
    ax.set_title(title, fontsize=10)
    save(fig, path)


def fold_roc_figure(scored: pd.DataFrame, *, positive_class: str, title: str, path: str) -> None:
    """The out-of-fold ROC of each fold, their mean curve with a band of one SD, and the pooled curve.

    Parameters
    ----------
    scored : pandas.DataFrame
        Out-of-fold entries with ``fold``, ``label`` and ``p_<positive_class>``.
    positive_class : str
        The class scored.
    title, path : str
        Figure title and the PNG to write.
    """
    fig, ax = plt.subplots(figsize=(5.6, 5))
    curves, aucs = [], []
    for fold, part in scored.groupby("fold", sort=True):
        truth = (part["label"] == positive_class).to_numpy(int)
        score = part[f"p_{positive_class}"].to_numpy(float)
        if not 0 < truth.sum() < len(truth):
            ax.plot([], [], color="grey", lw=0.8, label=f"fold {fold}: one class only, no ROC")
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        curves.append(np.interp(FPR_GRID, fpr, tpr))
        curves[-1][0] = 0.0
        aucs.append(float(auc(fpr, tpr)))
        ax.plot(fpr, tpr, lw=0.8, alpha=0.7, label=f"fold {fold}: AUC {aucs[-1]:.2f}, {len(part)} entries")
    if curves:
        mean, sd = np.mean(curves, axis=0), np.std(curves, axis=0)
        spread = f" +/- {np.std(aucs, ddof=1):.2f} (SD)" if len(aucs) > 1 else ""
        ax.plot(FPR_GRID, mean, color="black", lw=2, label=f"mean of folds: AUC {np.mean(aucs):.2f}{spread}")
        ax.fill_between(
            FPR_GRID,
            np.clip(mean - sd, 0, 1),
            np.clip(mean + sd, 0, 1),
            color="grey",
            alpha=0.25,
            lw=0,
            label="mean +/- 1 SD",
        )
    truth = (scored["label"] == positive_class).to_numpy(int)
    if 0 < truth.sum() < len(truth):
        fpr, tpr, _ = roc_curve(truth, scored[f"p_{positive_class}"].to_numpy(float))
        ax.plot(fpr, tpr, color="black", ls="--", lw=1, label="pooled out-of-fold")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xlabel(f"false-positive rate (1 - specificity), not {positive_class}")
    ax.set_ylabel(f"true-positive rate (sensitivity), {positive_class}")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    save(fig, path)


def confusion_figure(table: pd.DataFrame, classes: Sequence[str], *, title: str, path: str) -> None:
    """Confusion matrix with counts and row percentages (rows: true class; columns: most probable class)."""
    counts = table.set_index("true").reindex(list(classes), fill_value=0)[list(classes)].to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = max(4.5, 0.7 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{100 * share[i, j]:.0f}%",
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 3 else 0, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted: most probable class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    save(fig, path)


def training_curves_figure(history: pd.DataFrame, title: str, path: str) -> None:
    """Loss and accuracy per epoch, training and validation; frozen epochs shaded, kept epoch marked.

    A history with a ``fold`` column (an ensemble's) is drawn one pair of curves per fold; a probe's (one
    row per ``C`` tried, :mod:`slidesnake.model.probe`) as its losses against ``C``.
    """
    if "c" in history:
        _probe_curves_figure(history, title, path)
        return
    if history.empty:  # a pretrained classifier, deployed without training
        fig, ax = plt.subplots(figsize=(5.5, 2.0), layout="constrained")
        ax.axis("off")
        ax.text(0.5, 0.5, "not trained here (a pretrained classifier)", ha="center", va="center")
        fig.suptitle(title)
        save(fig, path)
        return
    if "fold" in history:
        _fold_curves_figure(history, title, path)
        return
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), layout="constrained")
    kept = None
    if "val_loss" in history and history["val_loss"].notna().any():
        kept = int(history.loc[history["val_loss"].idxmin(), "epoch"])
    frozen = (
        history.loc[history.get("phase", pd.Series(dtype=str)) == "frozen", "epoch"] if len(history) else []
    )
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        if len(frozen):
            ax.axvspan(
                min(frozen) - 0.5, max(frozen) + 0.5, color="grey", alpha=0.15, label="backbone frozen"
            )
        for column in (metric, f"val_{metric}"):
            if column in history:
                ax.plot(history["epoch"], history[column], marker="o", label=column)
        if kept is not None:
            ax.axvline(kept, color="black", ls="--", lw=1, label=f"kept: epoch {kept} (lowest val_loss)")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def _probe_curves_figure(history: pd.DataFrame, title: str, path: str) -> None:
    """A probe's train and validation log loss against C (per fold), the chosen C marked."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    parts = history.groupby("fold", sort=True) if "fold" in history else [(None, history)]
    for fold, part in parts:
        suffix = "" if fold is None else f" (fold {fold})"
        for column, style in (("loss", "--"), ("val_loss", "-")):
            if column in part and part[column].notna().any():
                ax.plot(part["c"], part[column], style, marker="o", label=f"{column}{suffix}")
        chosen = part[part["chosen"].astype(bool)] if "chosen" in part else part.iloc[:0]
        for c in chosen["c"]:
            ax.axvline(c, color="black", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("C (inverse regularisation); dotted: chosen")
    ax.set_ylabel("log loss")
    ax.legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def _fold_curves_figure(history: pd.DataFrame, title: str, path: str) -> None:
    """Training (dashed) and validation (solid) curves of each fold, each fold's kept epoch dotted."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), layout="constrained")
    for k, (fold, part) in enumerate(history.groupby("fold", sort=True)):
        colour = plt.cm.tab10.colors[k % 10]
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(part["epoch"], part[metric], color=colour, ls="--", lw=0.8)
            if f"val_{metric}" in part:
                ax.plot(
                    part["epoch"], part[f"val_{metric}"], color=colour, lw=1.2, label=f"fold {fold} (val)"
                )
                if part["val_loss"].notna().any():
                    ax.axvline(part.loc[part["val_loss"].idxmin(), "epoch"], color=colour, ls=":", lw=0.8)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_title(f"{metric}: validation (solid, the held-out fold), training (dashed); kept epoch dotted")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def embedding_figure(table: pd.DataFrame, title: str, path: str) -> None:
    """A 2-D embedding (``tsne_1``, ``tsne_2``) twice: coloured by class, then by slide (or split for images).

    Clouds that follow slides rather than classes in the second panel point to batch effects
    (stain, scanner, site).
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
    markers = {"train": "o", "val": "s", "test": "^"}
    by_slide = "row" in table and table["item"].nunique() > 1
    for ax, column, name in ((axes[0], "label", "class"), (axes[1], "item" if by_slide else "split", None)):
        values = sorted(table[column].unique(), key=str)
        palette = plt.cm.tab20.colors if len(values) > 10 else plt.cm.tab10.colors
        for k, value in enumerate(values):
            part = table[table[column] == value]
            for split, points in part.groupby("split"):
                ax.scatter(
                    points["tsne_1"],
                    points["tsne_2"],
                    s=10,
                    alpha=0.7,
                    color=palette[k % len(palette)],
                    marker=markers.get(split, "o"),
                    label=str(value) if split == part["split"].iloc[0] else None,
                )
        shown = min(len(values), 20)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(
            handles[:shown], labels[:shown], fontsize=7, markerscale=1.5, loc="best", title=name or column
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"by {name or ('slide' if column == 'item' else column)} (marker: split)", fontsize=10)
    fig.suptitle(title)
    save(fig, path)


def cross_site_figure(table: pd.DataFrame, *, path: str) -> None:
    """AUC and balanced accuracy with their 95% CIs of each model at each other site, one marker per stain
    setting (two panels: a saturated AUC can hide what the threshold does).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`slidesnake.cross_site.cross_site_table`.
    path : str
        The PNG written.
    """
    pairs = list(dict.fromkeys(zip(table["model"], table["cohort"], strict=True)))
    stains = list(dict.fromkeys(table["stain"]))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 1.2 + 0.9 * max(1, len(pairs))), sharey=True)
    step = 0.6 / max(1, len(stains))
    level = table["level"].iloc[0] if len(table) else "tile"
    for ax, metric, label in zip(
        axes, ("auc", "balanced_accuracy"), ("AUC", "balanced accuracy"), strict=True
    ):
        for k, stain in enumerate(stains):
            part = table[table["stain"] == stain]
            offset = (k - (len(stains) - 1) / 2) * step
            y = [pairs.index(pair) + offset for pair in zip(part["model"], part["cohort"], strict=True)]
            value = part[metric].to_numpy(float)
            low, high = part[f"{metric}_ci_low"].to_numpy(float), part[f"{metric}_ci_high"].to_numpy(float)
            error = np.nan_to_num(np.abs(np.vstack([value - low, high - value])))
            ax.errorbar(value, y, xerr=error, fmt="o", capsize=3, label=stain)
        reference = table.drop_duplicates(["model", "cohort"])
        if f"in_site_{metric}" in reference and reference[f"in_site_{metric}"].notna().any():
            ys = [pairs.index(pair) for pair in zip(reference["model"], reference["cohort"], strict=True)]
            ax.scatter(
                reference[f"in_site_{metric}"].to_numpy(float),
                ys,
                marker="|",
                s=500,
                color="black",
                label="the model at its own site (test)",
                zorder=3,
            )
        shown = pd.concat(
            [table[c] for c in (metric, f"{metric}_ci_low", f"in_site_{metric}") if c in table]
        ).astype(float)
        low = float(np.nanmin(shown)) if shown.notna().any() else 0.0
        ax.set_xlim(max(0.0, low - 0.05), 1.01)  # zoomed to what is shown: differences stay visible
        if low < 0.55:
            ax.axvline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(f"{level}-level {label} (95% CI)")
    axes[0].set_yticks(range(len(pairs)), [f"model {m}\non {c}'s slides" for m, c in pairs])
    axes[0].invert_yaxis()
    # beside the panels, never over a point
    axes[1].legend(
        *axes[0].get_legend_handles_labels(),
        title="stain",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=8,
    )
    fig.suptitle("Cross-site performance by stain setting (patient-bootstrap CIs; no bar: not estimable)")
    save(fig, path)
