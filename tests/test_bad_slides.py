"""A training dataset with bad slides in it: the study still completes, the bad slides are quarantined.

One unreadable slide, one without MPP, one without tissue, one smaller than a tile and one whose
file is corrupt after its first reads (its mask's level) sit in site_a beside its six good slides;
with them a slide corrupt part-way at its tiling level (tiled without its unreadable tiles, flagged,
used), and two good slides with bad annotations: an unparseable file, and polygons that all lie off
the slide (those are tiled and mapped, but not labelled or trained on). With ``on_bad_slide: skip``
(the default) the whole study runs with ``--keep-going`` and exits cleanly: the model, the heatmaps
of all good slides, the audit table, the provenance and the report; the bad slides carry
``status: excluded`` and their reason everywhere. (A clean exit shows that no job failed: with
``--keep-going`` a failed job still ends the run with a non-zero status.)
"""

import json

import numpy as np
import pandas as pd
import pytest
import shapely.affinity
import shapely.geometry
from corrupt import corrupt_tiles
from workflow_runs import make_workdir, snakemake

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
    "corrupt_mask_level": "cannot read level 1",
}
GOOD = [f"A0{k}" for k in range(1, 7)]
#: A slide whose level-0 JPEG tiles are corrupt from half-way on: tiled without them, and flagged.
PART_WAY = "part_way"
#: Slides quarantined for their annotations by label_tiles, and the words of their reason.
BAD_ANNOTATIONS = {
    "broken_annotations": "cannot parse annotations",
    "off_slide": "no annotation region lies on the slide",
}


def _sheet(folder):
    """Site_a's six demo slides and the four bad ones, each bad one its own patient."""
    demo = demo_sheet(folder, small=True)
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
        ("corrupt_mask_level", _corrupt(folder, "corrupt_mask_level", level=1)),
        (PART_WAY, _corrupt(folder, PART_WAY, level=0)),
    ]
    none = str(folder / "none.geojson")
    rows = [
        {"slide_id": s, "patient_id": f"PX{k}", "dataset": "site_a", "path": str(p), "annotations": none}
        for k, (s, p) in enumerate(bad)
    ]
    rows[-1]["annotations"] = str(folder / f"{PART_WAY}.geojson")  # a usable slide: its own tumor
    rows += [_bad_annotations(folder, slide_id, f"PY{k}") for k, slide_id in enumerate(BAD_ANNOTATIONS)]
    sheet = pd.concat([demo, pd.DataFrame(rows)], ignore_index=True)
    sheet.to_csv(folder / "slides.tsv", sep="\t", index=False)
    return folder / "slides.tsv"


def _corrupt(folder, slide_id, level):
    """A demo slide whose JPEG tiles of ``level`` are corrupt from half-way through the file on."""
    intact = folder / f"{slide_id}-intact.svs"
    write_demo_slide(intact, folder / f"{slide_id}.geojson", slide_id, "site_a", small=True)
    corrupt_tiles(intact, folder / f"{slide_id}.svs", level=level, first=0.5)
    return folder / f"{slide_id}.svs"


def _bad_annotations(folder, slide_id, patient):
    """A good demo slide whose annotations are unparseable, or lie 100,000 px off the slide."""
    slide, annotations = folder / f"{slide_id}.svs", folder / f"{slide_id}.geojson"
    write_demo_slide(slide, annotations, slide_id, "site_a", small=True)
    if slide_id == "off_slide":
        collection = json.loads(annotations.read_text())
        for feature in collection["features"]:
            moved = shapely.affinity.translate(shapely.geometry.shape(feature["geometry"]), 1e5, 1e5)
            feature["geometry"] = shapely.geometry.mapping(moved)
        annotations.write_text(json.dumps(collection))
    else:
        annotations.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature",')
    return {
        "slide_id": slide_id,
        "patient_id": patient,
        "dataset": "site_a",
        "path": str(slide),
        "annotations": str(annotations),
    }


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
    done = snakemake(workdir, "--cores", "2", "--keep-going")
    assert done.returncode == 0, done.stderr[-5000:]
    return workdir


def test_the_audit_table_says_which_slides_are_excluded_and_why(bad_study):
    slides = pd.read_csv(bad_study / "results" / "slides.tsv", sep="\t", keep_default_na=False)
    slides = slides.set_index("slide_id")
    assert (slides.loc[GOOD, "status"] == "ok").all()
    for slide_id, words in {**BAD, **BAD_ANNOTATIONS}.items():
        assert slides.at[slide_id, "status"] == "excluded"
        assert words in slides.at[slide_id, "reason"], slides.at[slide_id, "reason"]
        assert slides.at[slide_id, "flags"].startswith("excluded: ")
    for slide_id in BAD_ANNOTATIONS:
        assert slides.at[slide_id, "reason"].startswith(
            f"annotations: {bad_study.parent / slide_id}.geojson: "
        )
        assert slides.at[slide_id, "tiles_written"] > 0  # tiled as usual


def test_a_slide_corrupt_part_way_is_used_without_its_unreadable_tiles_and_flagged(bad_study):
    results = bad_study / "results"
    slides = pd.read_csv(results / "slides.tsv", sep="\t", keep_default_na=False).set_index("slide_id")
    row = slides.loc[PART_WAY]
    assert row["status"] == "ok" and 0 < row["tiles_unreadable"] < row["tiles_kept"]
    assert row["tiles_written"] == row["tiles_kept"] - row["tiles_unreadable"]
    assert f"{row['tiles_unreadable']} of {row['tiles_kept']} tissue tiles unreadable" in row["flags"]
    log = (results / "logs" / "ingest" / f"{PART_WAY}.log").read_text()
    assert "tissue tile(s) could not be read and are left out" in log
    scores = read_json(results / "predictions" / f"{PART_WAY}.scores.json")
    assert scores["status"] == "ok" and scores["tiles"] > 0
    assert (results / "heatmaps" / f"{PART_WAY}.jpg").stat().st_size > 20_000
    assert PART_WAY in (results / "provenance.json").read_text()  # the study's provenance was written


def test_slides_with_bad_annotations_get_no_labels_the_others_do(bad_study):
    labels = bad_study / "results" / "labels" / "site_a"
    good = pd.concat([pd.read_csv(labels / f"{s}.tsv", sep="\t", keep_default_na=False) for s in GOOD])
    assert set(good["slide_id"]) == set(GOOD)
    assert (good["label"] == "tumor").sum() > 10 and (good["label"] == "normal").sum() > 10
    for slide_id in BAD_ANNOTATIONS:
        table = pd.read_csv(labels / f"{slide_id}.tsv", sep="\t", keep_default_na=False)
        assert len(table) and (table["label"] == "").all()
    quarantine = pd.read_csv(labels / "@quarantine.tsv", sep="\t")
    assert quarantine["slide_id"].tolist() == list(BAD_ANNOTATIONS)
    log = (bad_study / "results" / "logs" / "label_tiles" / "site_a.log").read_text()
    assert "off_slide: quarantined (config 'on_bad_slide: skip'): annotations: " in log


def test_the_model_is_trained_on_the_good_slides_only(bad_study):
    splits = pd.read_csv(bad_study / "results" / "splits" / "site_a.tsv", sep="\t").set_index("item")
    assert set(splits.loc[[*BAD, *BAD_ANNOTATIONS], "split"]) == {"excluded"}
    assert set(splits.loc[GOOD, "split"]) <= {"train", "val", "test"}
    assert splits.at[PART_WAY, "split"] in {"train", "val", "test"}
    entries = pd.read_csv(bad_study / "results" / "entries" / "site_a.tsv", sep="\t")
    assert set(entries["item"]) == {*GOOD, PART_WAY}
    assert (bad_study / "results" / "models" / "site_a" / "model.keras").stat().st_size > 0
    leakage = read_json(bad_study / "results" / "splits" / "site_a.leakage.json")
    assert leakage["excluded_slides"] == [*BAD, *BAD_ANNOTATIONS]


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
    for slide_id in BAD_ANNOTATIONS:  # mapped, but with no labels to compare the map with
        scores = read_json(results / "predictions" / f"{slide_id}.scores.json")
        assert scores["status"] == "ok" and scores["tiles"] > 0
        assert scores["label_positive"] is None and scores["dice"] is None
        assert (results / "heatmaps" / f"{slide_id}.jpg").stat().st_size > 20_000


def test_the_report_lists_the_excluded_slides_at_the_top(bad_study):
    study = (bad_study / "results" / "reports" / "study.html").read_text()
    top = study.index("Excluded slides")
    assert top < study.index("<h2", top + 1) if "<h2" in study[top + 1 :] else True
    for slide_id in [*BAD, *BAD_ANNOTATIONS]:
        assert slide_id in study[top:]
    assert not list((bad_study / "results").rglob("*.tmp*"))
