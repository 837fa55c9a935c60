"""The demo study's three sites and its slide sheet."""

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
        "slides_per_patient": (2, 1, 2, 1, 1, 1, 1, 1, 1, 1),
        # Optical density (R, G, B) per unit of stain: a pink, eosin-heavy stain.
        "hematoxylin_od": (0.64, 0.92, 0.26),
        "eosin_od": (0.06, 0.62, 0.25),
        "eosin_amount": 1.0,
        "hematoxylin_amount": 0.9,
        # A sharp 40x scanner: no blur beyond the optics of every slide (generated pixels, sigma).
        "scanner_blur": 0.0,
        # tumor: this share of the tissue (a range, drawn per slide)
        "tumor_cover": (0.27, 0.36),
    },
    "site_b": {
        "mpp": 0.5,
        "app_mag": 20,
        "slide_prefix": "B",
        "patient_prefix": "PB",
        "slides_per_patient": (1, 2, 1, 2, 1, 1, 1, 1, 1, 1),
        # A bluer hematoxylin, a purple eosin and more of both: the whole slide is darker and purple.
        "hematoxylin_od": (0.86, 0.78, 0.20),
        "eosin_od": (0.28, 0.66, 0.14),
        "eosin_amount": 1.0,
        "hematoxylin_amount": 1.35,
        # A softer 20x scanner.
        "scanner_blur": 1.3,
        "tumor_cover": (0.27, 0.36),
    },
    "site_c": {
        "mpp": 0.25,
        "app_mag": 40,
        "slide_prefix": "C",
        "patient_prefix": "PC",
        "slides_per_patient": (1,) * 32,
        "hematoxylin_od": (0.70, 0.88, 0.24),
        "eosin_od": (0.10, 0.64, 0.22),
        "eosin_amount": 0.95,
        "hematoxylin_amount": 1.0,
        "scanner_blur": 0.0,
        # The slide-level trait: 'vesicular' tumors, mucinous (lakes of pale mucin) with larger, pale nuclei
        # (a dark rim, a nucleolus), in the patients marked 1, 'classic' in the others (the sheet's label).
        "trait_patients": (1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0)
        + (0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1),
        "tumor_cover": (0.27, 0.36),
    },
}

#: The trait's two values (the sheet's ``label`` of ``site_c``'s slides): present, absent.
TRAIT = ("vesicular", "classic")

#: Slides with an artefact QC must flag: a pen mark, a tissue fold, a blurred region, almost no tissue.
DEMO_ARTEFACTS: dict[str, str] = {"A09": "pen", "A12": "fold", "B09": "blur", "B11": "sparse"}

#: The small study (``--small``, the tests' study): the first patients of site_a and site_b only.
SMALL_PATIENTS = 4
SMALL_DATASETS = ("site_a", "site_b")

#: Columns of the demo sheet: the required ones, the annotations and the slide label (the trait).
DEMO_COLUMNS = [*SHEET_COLUMNS, "annotations", "label"]


def _posix(root: str | Path) -> str:
    return root.as_posix() if isinstance(root, PurePath) else os.fspath(root)


def demo_sheet(root: str | Path, small: bool = False) -> pd.DataFrame:
    """Return the slide sheet of the demo study.

    Parameters
    ----------
    root : str or Path
        Folder that holds (or will hold) the demo slides. It is joined as given, not resolved.
    small : bool, optional
        The small study: the first :data:`SMALL_PATIENTS` patients of site_a and site_b (12 slides,
        8 patients), with the same slide ids as in the whole study.

    Returns
    -------
    pandas.DataFrame
        One row per slide (the whole study: 40 slides, 36 patients, 3 datasets) with columns
        ``slide_id``, ``patient_id``, ``dataset``, ``path`` (``{root}/{slide_id}.svs``),
        ``annotations`` (``{root}/{slide_id}.geojson``) and ``label`` (site_c's trait, else empty).
    """
    base = _posix(root)
    rows = []
    for dataset, spec in DEMO_DATASETS.items():
        if small and dataset not in SMALL_DATASETS:
            continue
        n = 0
        counts = spec["slides_per_patient"][:SMALL_PATIENTS] if small else spec["slides_per_patient"]
        for p, count in enumerate(counts, start=1):
            label = ""
            if "trait_patients" in spec:
                label = TRAIT[0] if spec["trait_patients"][p - 1] else TRAIT[1]
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
                        "label": label,
                    }
                )
    return pd.DataFrame(rows, columns=DEMO_COLUMNS)


def slide_look(slide_id: str, dataset: str) -> dict:
    """What a demo slide shows beyond its site: its artefact (or None) and whether it carries the trait."""
    spec = DEMO_DATASETS[dataset]
    trait = False
    if "trait_patients" in spec:
        number = int(slide_id[len(spec["slide_prefix"]) :])
        trait = bool(spec["trait_patients"][number - 1])  # one slide per patient in site_c
    return {"artefact": DEMO_ARTEFACTS.get(slide_id), "trait": trait}
