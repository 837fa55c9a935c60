"""Slide QC flags on real slides: the demo's artefact slides (pen, fold, blurred region, almost no tissue)
are flagged, each for what it has, and clean slides and OpenSlide's real CMU-1 are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CMU, defaults
from slidesnake.audit import AUDIT_TABLE
from slidesnake.demo import write_demo_slide
from slidesnake.demo.sheet import DEMO_ARTEFACTS
from slidesnake.io import read_json
from slidesnake.qc import QCSettings, study_flags
from slidesnake.rules.ingest import audit, ingest
from slidesnake.settings import TissueSettings
from slidesnake.slide_folder import slide_file
from slidesnake.tissue import ink_mask

#: Clean slides beside the artefacts, so that each dataset's medians are those of ordinary slides.
CLEAN = {"A01": "site_a", "A03": "site_a", "A04": "site_a", "B01": "site_b", "B02": "site_b", "B04": "site_b"}
#: The small slides hold 0.1 mm2 of tissue and the sparse one 0.03 (a few tiles, more than the tissue
#: mask's smallest piece): at this size, almost no tissue is under a third of the median slide.
QC = {**defaults("qc"), "min_tissue_ratio": 0.35}
ARTEFACT_SITE = {slide_id: "site_a" if slide_id.startswith("A") else "site_b" for slide_id in DEMO_ARTEFACTS}


def _ingest(svs: Path, slide_id: str, out: Path) -> str:
    slide_dir = out / slide_id
    ingest(
        slide_path=str(svs),
        slide_id=slide_id,
        slide_settings={
            "sheet_mpp": None,
            "resolution": defaults("resolution"),
            "tiling": defaults("tiling"),
        },
        mpp_override=None,
        tissue_config=defaults("tissue"),
        on_bad_slide="skip",
        slide_dir=str(slide_dir),
        store=str(out / f"{slide_id}.zarr"),
        threads=1,
    )
    return str(slide_dir)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """Audit rows (slide id -> row) of small clean and artefact demo slides and CMU-1; their folders."""
    folder = tmp_path_factory.mktemp("qc")
    slide_dirs = {}
    for slide_id, dataset in {**CLEAN, **ARTEFACT_SITE}.items():
        svs = folder / f"{slide_id}.svs"
        write_demo_slide(svs, folder / f"{slide_id}.geojson", slide_id, dataset, small=True)
        slide_dirs[slide_id] = _ingest(svs, slide_id, folder / "out")
    slide_dirs["CMU-1"] = _ingest(CMU, "CMU-1", folder / "out")
    table = folder / "slides.tsv"
    datasets = {**CLEAN, **ARTEFACT_SITE, "CMU-1": "real"}
    audit(slide_dirs=list(slide_dirs.values()), out_tsv=str(table), qc=QC, datasets=datasets)
    rows = AUDIT_TABLE.read(table).set_index("slide_id")
    return {slide_id: rows.loc[slide_id] for slide_id in rows.index}, slide_dirs


@pytest.mark.parametrize(
    ("slide_id", "flag"),
    [
        ("A09", "pen or marker ink: "),
        ("A12", "a fold or thick section? "),
        ("B09", "a blurred region? "),
        ("B11", "almost no tissue: "),
    ],
)
def test_each_artefact_slide_is_flagged_for_its_artefact_only(audited, slide_id: str, flag: str) -> None:
    rows, _ = audited
    assert DEMO_ARTEFACTS[slide_id]  # the demo sheet's artefact slides
    flags = rows[slide_id]["flags"].split(";")
    assert rows[slide_id]["status"] == "ok"
    assert [f for f in flags if f.startswith(flag)], flags
    others = ("pen or marker ink", "a fold or thick", "a blurred region", "out of focus", "almost no tissue")
    assert [f for f in flags if f.startswith(others)] == [f for f in flags if f.startswith(flag)]


def test_clean_slides_and_a_real_slide_have_no_flags(audited) -> None:
    rows, _ = audited
    for slide_id in [*CLEAN, "CMU-1"]:
        assert rows[slide_id]["flags"] == "", (slide_id, rows[slide_id]["flags"])
    assert rows["CMU-1"]["ink_mm2"] == 0 and rows["CMU-1"]["dense_share"] < defaults("qc")["fold_share"]


def test_ink_is_left_out_of_the_tissue_mask(audited) -> None:
    rows, slide_dirs = audited
    settings = TissueSettings.from_config(defaults("tissue"), where="tissue")
    thumbnail = np.asarray(Image.open(slide_file(slide_dirs["A09"], "thumbnail")).convert("RGB"))
    mask = np.asarray(Image.open(slide_file(slide_dirs["A09"], "mask"))) > 0
    ink = ink_mask(thumbnail, settings)
    assert ink.sum() * (settings.mask_mpp / 1000) ** 2 == pytest.approx(rows["A09"]["ink_mm2"], abs=1e-3)
    assert ink.any() and not (mask & ink).any()
    assert read_json(slide_file(slide_dirs["A09"], "tissue_qc"))["ink_mm2"] > defaults("qc")["pen_mm2"]


def test_flags_compare_a_slide_with_the_study_median() -> None:
    settings = QCSettings.from_config(defaults("qc"))
    row = {"status": "ok", "dataset": "site", "tissue_share": 0.4, "mpp_source": "slide", "blur_score": 10.0}
    row["tiles_kept"] = 40
    rows = [{**row, "slide_id": f"S{i}", "tissue_area_mm2": 1.0} for i in range(4)]
    rows.append({**row, "slide_id": "small", "tissue_area_mm2": 0.09, "tiles_kept": 3})
    flags = study_flags(rows, settings)
    assert flags[:4] == [[]] * 4
    expected = "almost no tissue: 0.090 mm2, 3 tissue tiles (the dataset's median slide has 1.00 mm2)"
    assert flags[4] == [expected]
    rows[4]["tissue_area_mm2"] = 0.1  # at the ratio: not flagged
    assert study_flags(rows, settings)[4] == []
    excluded = {**rows[0], "status": "excluded", "reason": "unreadable", "tissue_area_mm2": 0.0}
    assert study_flags([*rows[:4], excluded], settings)[4] == ["excluded: unreadable"]
    # another dataset's slides (a site that cuts small biopsies) are compared among themselves
    biopsies = [{**row, "slide_id": f"b{i}", "dataset": "small", "tissue_area_mm2": 0.09} for i in range(3)]
    assert study_flags([*rows[:4], *biopsies], settings)[4:] == [[]] * 3
