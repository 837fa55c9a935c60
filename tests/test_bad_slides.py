"""A training dataset with bad slides in it: the study still completes, the bad slides are quarantined.

One unreadable slide, one without MPP, one without tissue and one smaller than a tile sit in
site_a beside its six good slides. With ``on_bad_slide: skip`` (the default) the whole study runs
without ``--keep-going``: the model, the heatmaps of all good slides, the audit table and the report;
the bad slides carry ``status: excluded`` and their reason everywhere. (Run without ``--keep-going``,
the first failed job would end the run with a non-zero status, so a clean exit shows that no job
failed; with ``--keep-going`` the same jobs run and give the same outputs.)
"""

import numpy as np
import pandas as pd
import pytest
from test_workflow import make_workdir, snakemake

from conftest import SLIDES
from slidesnake.demo import demo_sheet, write_demo_slide
from slidesnake.demo.svs import write_slide
from slidesnake.io import read_json
from slidesnake.store import TileStore

pytestmark = pytest.mark.workflow

#: The bad slides and the words their reason must contain.
BAD = {
    "unreadable": "cannot",
    "no_mpp": "microns per pixel",
    "blank": "no tissue",
    "tiny": "smaller than one tile",
}
GOOD = [f"A0{k}" for k in range(1, 7)]


def _sheet(folder):
    """Site_a's six demo slides and the four bad ones, each bad one its own patient."""
    demo = demo_sheet(folder)
    demo = demo[demo["dataset"] == "site_a"].copy()
    for row in demo.itertuples():
        write_demo_slide(row.path, row.annotations, row.slide_id, "site_a", small=True)
    write_slide(folder / "blank.svs", np.full((1200, 1600, 3), 242, np.uint8), mpp=0.25)
    (folder / "none.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    bad = [
        ("unreadable", SLIDES / "bad" / "unreadable-tiles.svs"),
        ("no_mpp", SLIDES / "boxes-generic.tiff"),
        ("blank", folder / "blank.svs"),
        ("tiny", SLIDES / "tiny-aperio.svs"),
    ]
    none = str(folder / "none.geojson")
    rows = [
        {"slide_id": s, "patient_id": f"PX{k}", "dataset": "site_a", "path": str(p), "annotations": none}
        for k, (s, p) in enumerate(bad)
    ]
    sheet = pd.concat([demo, pd.DataFrame(rows)], ignore_index=True)
    sheet.to_csv(folder / "slides.tsv", sep="\t", index=False)
    return folder / "slides.tsv"


def yaml_dataset():
    return {
        "labels": {
            "source": "annotations",
            "classes": ["normal", "tumor"],
            "annotation_classes": {"Tumor": "tumor"},
            "unannotated": "normal",
        },
        "positive_class": "tumor",
    }


@pytest.fixture(scope="module")
def bad_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    workdir = make_workdir(folder / "run", _sheet(folder), datasets={"site_a": yaml_dataset()}, cohorts={})
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir


def test_the_audit_table_says_which_slides_are_excluded_and_why(bad_study):
    slides = pd.read_csv(bad_study / "results" / "slides.tsv", sep="\t", keep_default_na=False)
    slides = slides.set_index("slide_id")
    assert (slides.loc[GOOD, "status"] == "ok").all()
    for slide_id, words in BAD.items():
        assert slides.at[slide_id, "status"] == "excluded"
        assert words in slides.at[slide_id, "reason"], slides.at[slide_id, "reason"]
        assert slides.at[slide_id, "flags"].startswith("excluded: ")


def test_the_model_is_trained_on_the_good_slides_only(bad_study):
    splits = pd.read_csv(bad_study / "results" / "splits" / "site_a.tsv", sep="\t").set_index("item")
    assert set(splits.loc[list(BAD), "split"]) == {"excluded"}
    assert set(splits.loc[GOOD, "split"]) <= {"train", "val", "test"}
    entries = pd.read_csv(bad_study / "results" / "entries" / "site_a.tsv", sep="\t")
    assert set(entries["item"]) == set(GOOD)
    assert (bad_study / "results" / "models" / "site_a" / "model.keras").stat().st_size > 0
    assert read_json(bad_study / "results" / "splits" / "site_a.leakage.json")["excluded_slides"] == list(BAD)


def test_good_slides_have_maps_and_bad_ones_placeholders(bad_study):
    results = bad_study / "results"
    for slide_id in GOOD:
        scores = read_json(results / "predictions" / f"{slide_id}.scores.json")
        assert scores["status"] == "ok" and scores["tiles"] > 0
        assert (results / "heatmaps" / f"{slide_id}.jpg").stat().st_size > 20_000
    for slide_id in BAD:
        store = TileStore(results / "tiles" / f"{slide_id}.zarr")
        assert store.status == "excluded" and store.index.empty
        scores = read_json(results / "predictions" / f"{slide_id}.scores.json")
        assert scores["status"] == "excluded" and scores["tiles"] == 0
        for output in ("heatmaps/{}.jpg", "classmaps/{}.jpg", "qupath/{}.geojson", "overlays/{}.ome.tif"):
            assert (results / output.format(slide_id)).is_file()


def test_the_report_lists_the_excluded_slides_at_the_top(bad_study):
    study = (bad_study / "results" / "reports" / "study.html").read_text()
    top = study.index("Excluded slides")
    assert top < study.index("<h2", top + 1) if "<h2" in study[top + 1 :] else True
    for slide_id in BAD:
        assert slide_id in study[top:]
    assert not list((bad_study / "results").rglob("*.tmp*"))
