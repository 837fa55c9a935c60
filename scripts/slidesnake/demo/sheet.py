"""The demo study's two sites and its slide sheet."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

import pandas as pd

from ..study import SHEET_COLUMNS

DEMO_DATASETS: dict[str, dict] = {
    "site_a": {
        "mpp": 0.25,
        "app_mag": 40,
        "slide_prefix": "A",
        "patient_prefix": "PA",
        "slides_per_patient": (2, 1, 2, 1),
        # Optical density (R, G, B) per unit of stain: a pink, eosin-heavy stain.
        "hematoxylin_od": (0.64, 0.92, 0.26),
        "eosin_od": (0.06, 0.62, 0.25),
        "eosin_amount": 1.0,
        "hematoxylin_amount": 0.9,
    },
    "site_b": {
        "mpp": 0.5,
        "app_mag": 20,
        "slide_prefix": "B",
        "patient_prefix": "PB",
        "slides_per_patient": (1, 2, 1, 2),
        # A bluer hematoxylin and a more purple eosin: the whole slide looks more purple.
        "hematoxylin_od": (0.86, 0.78, 0.20),
        "eosin_od": (0.20, 0.62, 0.16),
        "eosin_amount": 0.9,
        "hematoxylin_amount": 1.1,
    },
}

#: Columns of the demo sheet: the required ones and the annotations.
DEMO_COLUMNS = [*SHEET_COLUMNS, "annotations"]


def _posix(root: str | Path) -> str:
    return root.as_posix() if isinstance(root, PurePath) else os.fspath(root)


def demo_sheet(root: str | Path, small: bool = False) -> pd.DataFrame:
    """Return the slide sheet of the demo study.

    Parameters
    ----------
    root : str or Path
        Folder that holds (or will hold) the demo slides. It is joined as given, not resolved.
    small : bool, optional
        Accepted for symmetry with :func:`write_demo_study`; the sheet does not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per slide (12 slides, 8 patients, 2 datasets) with columns ``slide_id``,
        ``patient_id``, ``dataset``, ``path`` (``{root}/{slide_id}.svs``) and ``annotations``
        (``{root}/{slide_id}.geojson``).
    """
    del small  # geometry only; the sheet is the same
    base = _posix(root)
    rows = []
    for dataset, spec in DEMO_DATASETS.items():
        n = 0
        for p, count in enumerate(spec["slides_per_patient"], start=1):
            for _ in range(count):
                n += 1
                slide_id = f"{spec['slide_prefix']}{n:02d}"
                rows.append(
                    {
                        "slide_id": slide_id,
                        "patient_id": f"{spec['patient_prefix']}{p}",
                        "dataset": dataset,
                        "path": f"{base}/{slide_id}.svs",
                        "annotations": f"{base}/{slide_id}.geojson",
                    }
                )
    return pd.DataFrame(rows, columns=DEMO_COLUMNS)
