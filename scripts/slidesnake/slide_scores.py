"""A predicted slide's scores: the slide score (from its tiles' positive-class probabilities), the share
and area called positive, and where the slide is labelled, its label and the map's agreement with it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import agreement, slide_score
from .settings import PredictionSettings
from .store.tiles import TileStore


def slide_scores(
    tiles: pd.DataFrame,
    tiles_store: TileStore,
    *,
    model: str,
    positive_class: str,
    settings: PredictionSettings,
    labels: pd.DataFrame | None,
) -> dict:
    """A predicted slide's scores (``results/predictions/<slide>.scores.json``), and with the slide's tile
    labels its label and the agreement (Dice, IoU) of its map with them.

    Parameters
    ----------
    tiles : pandas.DataFrame
        The predicted tiles (``aligned``, ``y``, ``x``, ``p_<class>``).
    tiles_store : TileStore
        The slide's tile store (status, plan).
    model : str
        The model's dataset.
    positive_class : str
        The class scored.
    settings : PredictionSettings
        Config ``prediction`` (threshold, slide score).
    labels : pandas.DataFrame or None
        The slide's tile labels (``label``, ``y``, ``x``, ``fraction_<class>``), None without.

    Returns
    -------
    dict
        ``slide_id``, ``status``, ``reason``, ``model``, ``positive_class``, ``tiles``, ``score`` and how
        it is made, mean and max probability, the positive fraction and area, ``label_positive``,
        ``dice``, ``iou``.
    """
    aligned = tiles[tiles["aligned"]]
    p = aligned[f"p_{positive_class}"].to_numpy(float)
    plan = tiles_store.plan
    tile_mm2 = (plan.tile_size * plan.tile_mpp / 1000) ** 2
    called = p >= settings.threshold
    scores = {
        "slide_id": tiles_store.slide_id,
        "status": tiles_store.status,
        "reason": tiles_store.reason,
        "model": model,
        "positive_class": positive_class,
        "tiles": len(aligned),
        "score": round(slide_score(p, settings.slide_score), 5) if len(p) else None,
        "slide_score": settings.slide_score,
        "threshold": settings.threshold,
        "mean_probability": round(float(p.mean()), 5) if len(p) else None,
        "max_probability": round(float(p.max()), 5) if len(p) else None,
        "positive_fraction": round(float(called.mean()), 5) if len(p) else None,
        "positive_area_mm2": round(float(called.sum()) * tile_mm2, 4),
        "label_positive": None,
        "dice": None,
        "iou": None,
    }
    if labels is None:
        return scores
    scores["label_positive"] = bool((labels["label"] == positive_class).any())
    fraction = f"fraction_{positive_class}"
    if fraction in labels:
        joined = aligned.merge(labels[["y", "x", fraction]], on=["y", "x"], how="left")
        dice, iou = agreement(
            joined[f"p_{positive_class}"] >= settings.threshold, joined[fraction].fillna(0.0)
        )
        scores["dice"] = None if np.isnan(dice) else round(dice, 4)
        scores["iou"] = None if np.isnan(iou) else round(iou, 4)
    return scores
