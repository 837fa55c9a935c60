"""A slide's MIL attention: the map (beside the slide), its tiles for QuPath, the top and bottom tiles.

Attention is a network's pooling weight, not a probability: it says which tiles the slide's prediction
rests on. Weights are averaged over the seeds' out-of-fold networks and shown as percentiles within the
slide (a bag of 50 tiles and one of 5,000 have weights of different scales).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from ..io import atomic_path
from ..plots import save
from ..plots.slides import SlideView, attention_figure, figure_thumbnail
from ..store.tiles import TileStore

_NAMESPACE = uuid.UUID("6f1d2c0e-7a43-4b58-9d1e-2b7e8a9c4f31")
#: Tiles shown from each end of a slide's attention ranking.
MONTAGE_TILES = 8


def slide_attention(attention: pd.DataFrame) -> pd.DataFrame:
    """One row per tile of a slide's attention rows: ``x0``, ``y0``, ``attention`` (mean over seeds) and
    ``percentile`` (its rank within the slide, 0-100)."""
    tiles = attention.groupby(["x0", "y0"], sort=True)["attention"].mean().reset_index()
    tiles["percentile"] = (tiles["attention"].rank(method="average", pct=True) * 100).round(2)
    return tiles


def attention_grid(tiles: pd.DataFrame, *, side_level0: float, shape0: tuple[int, int]) -> np.ndarray:
    """The percentiles on a grid of tile-sized cells over the slide ((row, column); NaN without a tile)."""
    rows, cols = math.ceil(shape0[0] / side_level0), math.ceil(shape0[1] / side_level0)
    grid = np.full((rows, cols), np.nan)
    r = np.clip(np.floor(tiles["y0"].to_numpy() / side_level0).astype(int), 0, rows - 1)
    c = np.clip(np.floor(tiles["x0"].to_numpy() / side_level0).astype(int), 0, cols - 1)
    grid[r, c] = tiles["percentile"].to_numpy()
    return grid


def write_attention_map(
    tiles: pd.DataFrame,
    *,
    thumbnail_png: str,
    shape0: tuple[int, int],
    mpp0: float,
    side_level0: float,
    outlines: Sequence[np.ndarray],
    title: str,
    path: str,
) -> None:
    """The attention figure of one slide (see :func:`slidesnake.plots.slides.attention_figure`).

    ``shape0`` is the slide's level-0 (height, width), ``mpp0`` its microns per level-0 pixel, and
    ``outlines`` its annotation rings in microns.
    """
    view = SlideView(
        thumbnail=figure_thumbnail(Image.open(thumbnail_png)),
        width_um=shape0[1] * mpp0,
        height_um=shape0[0] * mpp0,
        map_pixel_um=side_level0 * mpp0,
        outlines=tuple(outlines),
    )
    attention_figure(
        view, attention_grid(tiles, side_level0=side_level0, shape0=shape0), title=title, path=path
    )


def write_attention_geojson(tiles: pd.DataFrame, *, slide_id: str, side_level0: float, path: str) -> None:
    """The tiles as QuPath tile objects (level-0 squares) with measurements ``attention`` and
    ``attention percentile``, a FeatureCollection QuPath imports (File > Import objects)."""
    features = []
    for x0, y0, weight, percentile in tiles[["x0", "y0", "attention", "percentile"]].itertuples(index=False):
        x1, y1 = float(x0 + side_level0), float(y0 + side_level0)
        ring = [[float(x0), float(y0)], [x1, float(y0)], [x1, y1], [float(x0), y1], [float(x0), float(y0)]]
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_NAMESPACE, f"{slide_id}/attention/{y0}/{x0}")),
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "objectType": "tile",
                    "measurements": {
                        "attention": round(float(weight), 8),
                        "attention percentile": percentile,
                    },
                },
            }
        )
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps({"type": "FeatureCollection", "features": features}) + "\n", encoding="utf-8"
        )


def write_montage(
    tiles: pd.DataFrame, *, store: TileStore, index: pd.DataFrame, title: str, path: str
) -> None:
    """The :data:`MONTAGE_TILES` tiles with the highest attention (top row) and the lowest (bottom row).

    ``index`` is the tile store's index (``x0``, ``y0`` level-0 corners, ``y``, ``x`` in its pixels).
    """
    ranked = tiles.sort_values("attention", ascending=False, kind="stable")
    ends = {"highest": ranked.head(MONTAGE_TILES), "lowest": ranked.tail(MONTAGE_TILES).iloc[::-1]}
    located = index.set_index(["x0", "y0"])[["y", "x"]]
    fig, axes = plt.subplots(2, MONTAGE_TILES, figsize=(11, 3.3), dpi=100, squeeze=False)
    for row, (end, part) in enumerate(ends.items()):
        for k in range(MONTAGE_TILES):
            ax = axes[row, k]
            ax.set_axis_off()
            if k >= len(part):
                continue
            x0, y0, percentile = part.iloc[k][["x0", "y0", "percentile"]]
            y, x = located.loc[(int(x0), int(y0))]
            ax.imshow(store.read_tile(int(y), int(x)))
            ax.set_title(f"{end} {k + 1}: p{percentile:.0f}", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.82, wspace=0.05, hspace=0.25)
    save(fig, path, dpi=100)
