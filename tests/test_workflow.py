"""Run the real workflow with Snakemake on a small generated study and check what it wrote."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from honest import assert_interval
from PIL import Image
from workflow_runs import SNAKEMAKE, TEST_STUDY, check_stored_tables, make_workdir, snakemake, write_config

from conftest import ROOT, SHARED
from slidesnake.demo import demo_sheet
from slidesnake.store import TileStore
from slidesnake.store.maps import read_probability_map

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    """The test study (.test/config: 12 small demo slides the workflow generates itself), run whole."""
    workdir = tmp_path_factory.mktemp("run") / "study"
    shutil.copytree(TEST_STUDY / "config", workdir / "config")
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


@pytest.fixture(scope="module")
def small_study(study_run):
    """The folder of the test study's generated demo slides."""
    return study_run / "resources" / "demo"


def test_every_stored_table_is_what_its_owner_declares(study_run):
    """Every table under results/ is read by its owner's declaration (columns, kinds, ids as text); the
    test study writes the tables of each stage."""
    matched = check_stored_tables(study_run)
    assert matched["results/slides.tsv"] == 1 and matched["results/slides/{slide}/tile_grid.tsv"] == 12
    assert (
        matched["results/predictions/{slide}.tsv"] == 12 and matched["results/reports/performance.tsv"] == 1
    )
    assert len(matched) >= 18, matched


def test_audit_table_records_the_resolution_policy(study_run):
    slides = pd.read_csv(study_run / "results" / "slides.tsv", sep="\t").set_index("slide_id")
    assert len(slides) == 12
    assert (slides.loc[slides.index.str.startswith("A"), "scale"] == 2.0).all()  # 40x scans, halved
    assert (slides.loc[slides.index.str.startswith("B"), "scale"] == 1.0).all()  # 20x scans, as they are
    assert (slides["tile_mpp"] == 0.5).all()
    assert (slides["mpp_source"] == "slide").all()
    assert (slides["tiles_kept"] > 0).all() and (slides["tissue_area_mm2"] > 0.05).all()
    assert slides["blur_score"].notna().all()


def test_stores_hold_the_kept_tiles_one_chunk_each(study_run):
    slides = pd.read_csv(study_run / "results" / "slides.tsv", sep="\t").set_index("slide_id")
    for slide_id in ("A01", "B04"):
        store = study_run / "results" / "tiles" / f"{slide_id}.zarr"
        image = TileStore(store).image
        assert image.shape == (slides.at[slide_id, "target_height"], slides.at[slide_id, "target_width"], 3)
        assert image.chunks == (64, 64, 3)
        index = TileStore(store).index
        assert len(index) == slides.at[slide_id, "tiles_kept"]
        shards = [p for p in (store / "image" / "c").rglob("*") if p.is_file()]
        held = {(r // 32, c // 32) for r, c in zip(index["row"], index["col"], strict=True)}
        assert len(shards) == len(held)  # one file per 32 x 32 tiles with tissue


def test_tumor_tiles_lie_inside_the_annotated_polygons(study_run, small_study):
    for slide_id, dataset in (("A02", "site_a"), ("B03", "site_b")):
        labels = pd.read_csv(
            study_run / "results" / "labels" / dataset / f"{slide_id}.tsv", sep="\t", keep_default_na=False
        )
        features = json.loads((small_study / f"{slide_id}.geojson").read_text())["features"]
        tumor = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in features])
        level0_tile = 64 * (2.0 if slide_id.startswith("A") else 1.0)
        centres = shapely.points(labels["x0"] + level0_tile / 2, labels["y0"] + level0_tile / 2)
        inside = shapely.contains(tumor, centres)
        assert (labels["label"] == "tumor").sum() > 5 and (labels["label"] == "normal").sum() > 5
        assert inside[labels["label"] == "tumor"].all()
        assert not inside[labels["label"] == "normal"].any()


def test_splits_keep_patients_together(study_run):
    for dataset in ("site_a", "site_b"):
        splits = pd.read_csv(study_run / "results" / "splits" / f"{dataset}.tsv", sep="\t")
        assert (splits.groupby("patient_id")["split"].nunique() == 1).all()
        assert set(splits["split"]) == {"train", "val", "test"}
        leakage = json.loads((study_run / "results" / "splits" / f"{dataset}.leakage.json").read_text())
        assert leakage["ok"] and not leakage["patients_on_several_sides"]


def test_each_dataset_has_its_model_and_metrics(study_run):
    for dataset in ("site_a", "site_b"):
        folder = study_run / "results" / "models" / dataset
        assert (folder / "model.keras").stat().st_size > 10_000
        used = json.loads((folder / "config.json").read_text())
        assert used["dataset"] == dataset and used["classes"] == ["normal", "tumor"]
        metrics = pd.read_csv(study_run / "results" / "reports" / dataset / "metrics.tsv", sep="\t")
        assert list(metrics["level"].unique()) == ["tile", "slide", "patient"]
        tiles = metrics[metrics["level"] == "tile"]
        assert list(tiles["split"]) == ["train", "val", "test"]
        entries = pd.read_csv(study_run / "results" / "entries" / f"{dataset}.tsv", sep="\t")
        assert tiles["n"].sum() == len(entries) and set(entries["label"]) == {"normal", "tumor"}
        # the demo's tumor overlaps inflamed stroma and glands and is outlined roughly: a few epochs on
        # 64 px tiles still separate it on held-out patients (0.77 and more measured)
        test = tiles.set_index("split").loc["test"]
        assert test["auc"] > 0.7
        assert_interval(test, "auc")
        embedding = pd.read_csv(study_run / "results" / "reports" / dataset / "tsne.tsv", sep="\t")
        assert {"train", "val", "test"} == set(embedding["split"]) and embedding[
            ["tsne_1", "tsne_2"]
        ].notna().all().all()
        for figure in ("confusion", "roc", "training_curves", "tsne"):
            assert Image.open(study_run / "results" / "reports" / dataset / f"{figure}.png").size[0] > 200


def test_probability_maps_follow_the_tumor(study_run):
    for slide_id, dataset in (("A06", "site_a"), ("B05", "site_b")):
        grid, attrs = read_probability_map(study_run / "results" / "maps" / f"{slide_id}.zarr")
        labels = pd.read_csv(
            study_run / "results" / "labels" / dataset / f"{slide_id}.tsv", sep="\t", keep_default_na=False
        )
        slides = pd.read_csv(study_run / "results" / "slides.tsv", sep="\t").set_index("slide_id")
        # stride 32 on 64 px tiles: two map cells per tile side, every class in the map
        assert attrs["classes"] == ["normal", "tumor"] and attrs["cell_target_px"] == 32
        assert grid.shape == (
            slides.at[slide_id, "target_height"] // 64 * 2,
            slides.at[slide_id, "target_width"] // 64 * 2,
            2,
        )
        assert np.isfinite(grid[..., 0]).sum() == 4 * len(labels)  # the cells of the stored tiles
        np.testing.assert_allclose(np.nansum(grid, axis=-1)[np.isfinite(grid[..., 0])], 1.0, atol=1e-4)
        p = grid[labels["row"] * 2, labels["col"] * 2, 1]
        assert np.nanmin(grid) >= 0 and np.nanmax(grid) <= 1
        predicted = pd.read_csv(study_run / "results" / "predictions" / f"{slide_id}.tsv", sep="\t")
        assert predicted["aligned"].sum() == len(labels) < len(predicted)  # shifted tiles too
        # rough outlines, inflamed stroma and glands: the tumor stands out, not perfectly
        assert p[labels["label"] == "tumor"].mean() > p[labels["label"] == "normal"].mean() + 0.1
        heatmap = Image.open(study_run / "results" / "heatmaps" / f"{slide_id}.jpg")
        assert heatmap.size[0] > 400


def test_external_cohort_is_evaluated_with_confidence_intervals(study_run):
    reports = study_run / "results" / "reports"
    metrics = pd.read_csv(reports / "site_b_by_model_a" / "metrics.tsv", sep="\t").set_index("level")
    assert set(metrics["split"]) == {"external"}
    # every slide of site_b, none of them seen by site_a's model
    assert metrics.at["slide", "n"] == 6 and metrics.at["patient", "n"] == 4
    for name in ("auc", "accuracy", "balanced_accuracy", "f1"):
        assert {f"{name}_ci_low", f"{name}_ci_high"} <= set(metrics.columns)
    tile = metrics.loc["tile"]
    assert tile["auc"] > 0.8
    assert_interval(tile, "auc")
    assert re.search(
        r"\d+ of \d+ stored tiles unlabelled \(boundary, excluded class\): left out", tile["note"]
    )
    items = pd.read_csv(reports / "site_b_by_model_a" / "items.tsv", sep="\t")
    assert items["dice"].between(0, 1).all() and (items["dice"] > 0.5).all()
    leakage = json.loads((study_run / "results" / "splits" / "site_b_by_model_a.leakage.json").read_text())
    assert leakage["ok"] and leakage["model"] == "site_a" and leakage["model_slides_compared"] == 6
    performance = pd.read_csv(reports / "performance.tsv", sep="\t")
    assert set(performance["validation"]) == {"internal", "external"}
    variants = {"site_b_by_model_a_macenko", "site_b_by_model_a_hed"}
    assert set(performance["evaluated_on"]) == {"site_a", "site_b", "site_b_by_model_a"} | variants
    external = performance[performance["evaluated_on"].str.startswith("site_b_by_model_a")]
    assert set(external["model"]) == {"site_a"}


def test_cross_site_table_compares_the_stain_settings_of_a_model(study_run):
    results = study_run / "results"
    table = pd.read_csv(results / "reports" / "cross_site.tsv", sep="\t")
    for column in ("model", "cohort", "stain", "auc", "auc_ci_low", "auc_ci_high", "balanced_accuracy"):
        assert column in table
    assert len(table) == 3 and set(table["model"]) == {"site_a"} and set(table["cohort"]) == {"site_b"}
    assert sorted(table["stain"]) == ["hed", "macenko", "none"]
    for _, row in table.iterrows():
        assert_interval(row, "auc")
    assert (table["auc"] > 0.7).all() and (table["n"] > 100).all()
    # each variant is its own model, trained with its settings; normalization travels in the model
    base = json.loads((results / "models" / "site_a" / "config.json").read_text())
    variants = results / "models" / "site_a" / "variants"
    macenko = json.loads((variants / "site_b_by_model_a_macenko" / "config.json").read_text())
    hed = json.loads((variants / "site_b_by_model_a_hed" / "config.json").read_text())
    assert base["stain_target"] is None and hed["stain_target"] is None
    assert macenko["stain_target"]["method"] == "macenko" and len(macenko["stain_target"]["stains"]) == 2
    assert hed["model"]["augment"]["hed_scale"] == 0.2 and base["model"]["augment"]["hed_scale"] == 0
    assert macenko["slide_splits"] == base["slide_splits"]  # trained on the same patients
    assert Image.open(results / "reports" / "cross_site.png").size[0] > 400
    # each row beside its model at its own site (site_a's test split), the reference of the figure
    in_site = pd.read_csv(results / "reports" / "site_a" / "metrics.tsv", sep="\t")
    own = in_site[(in_site["level"] == "tile") & (in_site["split"] == "test")]["auc"].iloc[0]
    assert (table["in_site_auc"] == own).all()
    for kind in ("heatmaps", "classmaps"):  # how the model sees the other site, slide by slide
        assert Image.open(results / "cohorts" / "site_b_by_model_a_hed" / kind / "B03.jpg").size[0] > 400
    geojson = json.loads((results / "cohorts" / "site_b_by_model_a" / "qupath" / "B03.geojson").read_text())
    assert geojson["features"] and "Tumor" in {
        f["properties"]["classification"]["name"] for f in geojson["features"]
    }


def test_every_slide_has_its_exports(study_run):
    for slide_id in ("A01", "B06"):
        collection = json.loads((study_run / "results" / "qupath" / f"{slide_id}.geojson").read_text())
        tiles = [f for f in collection["features"] if f["properties"]["objectType"] == "tile"]
        predicted = pd.read_csv(study_run / "results" / "predictions" / f"{slide_id}.tsv", sep="\t")
        assert len(tiles) == len(predicted)
        names = {f["properties"]["classification"]["name"] for f in collection["features"]}
        assert names <= {"Tumor", "normal"} and "Tumor" in names  # QuPath's class name, as annotated
        assert (study_run / "results" / "overlays" / f"{slide_id}.ome.tif").stat().st_size > 500
        assert Image.open(study_run / "results" / "classmaps" / f"{slide_id}.jpg").size[0] > 400


def test_provenance_records_versions_config_and_sheet(study_run):
    import hashlib

    provenance = json.loads((study_run / "results" / "provenance.json").read_text())
    assert provenance["packages"]["snakemake"].startswith("9.")
    assert {"tensorflow", "tensorflow-cpu"} & set(provenance["packages"]) and "zarr" in provenance["packages"]
    sheet = study_run / "config" / "slides.tsv"
    assert provenance["sheet"]["sha256"] == hashlib.sha256(sheet.read_bytes()).hexdigest()
    assert provenance["config"]["tiling"]["tile_size"] == 64
    assert len(provenance["workflow"]["commit"] or "") in (0, 40)
    assert len(provenance["packages"]) > 50  # every installed package, not a chosen few
    slides = {row["slide_id"]: row for row in provenance["slides"]}
    a01 = study_run / "resources" / "demo" / "A01.svs"
    assert len(slides) == 12 and slides["A01"]["sha256"] == hashlib.sha256(a01.read_bytes()).hexdigest()
    annotations = {Path(row["path"]).name: row["sha256"] for row in provenance["annotations"]}
    geojson = (study_run / "resources" / "demo" / "A01.geojson").read_bytes()
    assert len(annotations) == 12 and annotations["A01.geojson"] == hashlib.sha256(geojson).hexdigest()
    assert provenance["cpu"]["count"] >= 1 and provenance["cpu"]["model"]
    assert provenance["threads"]["tf_threads"] == 2
    assert "--cores 2" in provenance["run"]["command"] and provenance["run"]["host"]
    runs = pd.read_csv(study_run / "results" / "logs" / "runs.tsv", sep="\t")
    assert len(runs) >= 1 and "snakemake" in runs["command"].iloc[0]
    if provenance["workflow"]["dirty"]:
        assert provenance["workflow"]["diff"] or provenance["workflow"]["untracked"]


def test_rerun_has_nothing_to_do(study_run):
    done = snakemake(study_run, "-n", "--cores", "1")
    assert done.returncode == 0
    assert "Nothing to be done" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "affected", "unaffected"),
    [
        (
            "plots/evaluation.py",
            "results/reports/",
            ("results/models/", "results/predictions/", "results/tiles/"),
        ),
        (
            "wsi/backends/openslide.py",
            "results/slides/",  # ingest's outputs (its tile stores are listed before the edit too)
            ("results/models/", "results/predictions/", "results/reports/", "results/maps/"),
        ),
    ],
)
def test_a_library_edit_reruns_exactly_the_rules_that_run_it(
    study_run, tmp_path, module, affected, unaffected
):
    """A copy of the workflow with one library module edited: only the outputs of rules whose code reaches
    it have changed params (their code version); training, prediction, ingest and reports are apart."""
    copy = tmp_path / "repo"
    for folder in ("workflow", "scripts", "envs"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    command = [*SNAKEMAKE, "-s", str(copy / "workflow" / "Snakefile"), "--directory", str(study_run)]

    def params_changed() -> set[str]:
        done = subprocess.run(
            [*command, "--list-changes", "params"], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return {line.strip() for line in done.stdout.splitlines() if line.strip().startswith("results/")}

    before = params_changed()  # what Snakemake lists already (params recorded before the demo slides existed)
    target = copy / "scripts" / "slidesnake" / module
    target.write_text(target.read_text() + "\n# an edit\n")
    changed = sorted(params_changed() - before)
    assert any(path.startswith(affected) for path in changed), changed
    assert not [path for path in changed if path.startswith(unaffected)], changed


def test_a_touched_slide_is_not_read_again(study_run):
    slide = study_run / "resources" / "demo" / "B02.svs"
    slide.touch()
    done = snakemake(study_run, "-n", "--cores", "1")
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout[-2000:]


def test_a_lost_model_and_a_lost_map_are_rebuilt(study_run):
    for path in ("results/models/site_a/model.keras", "results/maps/A01.zarr"):
        target = study_run / path
        moved = target.with_name(target.name + ".moved")
        target.rename(moved)
        try:
            done = snakemake(study_run, "-n", "--cores", "1")
            assert done.returncode == 0 and "Nothing to be done" not in done.stdout + done.stderr, path
        finally:
            moved.rename(target)


def report_results(report: Path) -> dict[str, tuple[str, bytes]]:
    """The results embedded in a Snakemake report: path -> (mime type, content)."""
    import base64

    text = report.read_text(errors="replace")
    start = text.index("var results = ", text.index('<script id="results">')) + len("var results = ")
    results = json.loads(text[start : text.index("</script>", start)].strip().rstrip(";"))
    return {
        path: (entry["mime_type"], base64.b64decode(entry["data_uri"].split("base64,", 1)[1]))
        for path, entry in results.items()
    }


def test_study_report_shows_numbers_qc_and_reviewable_heatmaps(study_run):
    import io

    done = snakemake(study_run, "--report", "report.html")
    assert done.returncode == 0, done.stderr[-3000:]
    embedded = report_results(study_run / "report.html")
    # the numbers are HTML pages the report shows inline, not downloads
    mime, summary = embedded["results/reports/study.html"]
    summary = summary.decode()
    assert mime == "text/html" and "Details: every model on every set, every level" in summary
    # the headline first: one row per model and held-out set, variants named as variants
    headline = summary.split("How good is each model, on how many patients")[1].split("<h2>")[0]
    assert summary.index("How good is each model") < summary.index("Cross-site")
    for text in (
        "slide sensitivity",
        "slide specificity",
        "site_a, variant (stain macenko)",
        "site_b_by_model_a",
    ):
        assert text in headline, text
    assert "12 slides: " in summary and " excluded" in summary  # QC in one line
    assert "site_b_by_model_a" in summary and "external" in summary
    assert "Cross-site: each model at a site it never saw" in summary and "macenko" in summary
    assert "results/reports/cross_site.png" in embedded
    assert re.search(r"\d\.\d{3} \(\d\.\d{3}-\d\.\d{3}\)", summary)  # a value with its 95% CI
    assert "patient(s); its metrics and intervals say little" in summary  # the demo's 1-patient test split
    page = embedded["results/reports/site_a/summary.html"][1].decode()
    for text in (
        "Metrics, with 95% confidence intervals",
        "Per slide",
        "Split membership",
        "Leakage check passed",
    ):
        assert text in page
    qc = embedded["results/reports/qc.html"][1].decode()
    assert qc.count("class='cell") == 12 and qc.count("data:image/jpeg;base64,") == 12
    # heatmaps: JPEG of a set size, the annotation outline drawn in blue
    mime, heatmap = embedded["results/heatmaps/A02.jpg"]
    image = np.asarray(Image.open(io.BytesIO(heatmap)).convert("RGB")).astype(int)
    assert mime == "image/jpeg" and image.shape[1] == 1100 and len(heatmap) < 200_000
    blue = ((image[..., 2] - np.maximum(image[..., 0], image[..., 1])) > 120).sum()  # far bluer than H&E
    assert blue > 150, blue
    assert "results/cohorts/site_b_by_model_a/heatmaps/B01.jpg" in embedded  # every cohort's maps too
    assert "results/tiles/A01.zarr" not in embedded and len(embedded) < 150


def test_default_config_dry_run_and_lint():
    dry = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    lint = subprocess.run([*SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0 and "good condition" in lint.stdout + lint.stderr


def test_committed_sheets_are_the_demo_study():
    for folder, small in ((ROOT, False), (TEST_STUDY, True)):
        committed = pd.read_csv(folder / "config" / "slides.tsv", sep="\t", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(committed, demo_sheet("resources/demo", small=small))


def test_bad_sheet_fails_before_any_job(tmp_path):
    sheet = demo_sheet(tmp_path, small=True)
    sheet.loc[sheet["slide_id"] == "B01", "patient_id"] = "PA1"  # a patient in two datasets
    sheet.to_csv(tmp_path / "slides.tsv", sep="\t", index=False)
    workdir = make_workdir(tmp_path / "run", tmp_path / "slides.tsv")
    done = snakemake(workdir, "-n", "--cores", "1")
    assert done.returncode != 0
    assert "patient 'PA1' has slides in several datasets" in done.stdout + done.stderr
    assert not (workdir / "results").exists()


def test_a_class_with_one_patient_fails_with_a_clear_message(tmp_path):
    images = tmp_path / "images"
    for label, count in (("tumor", 3), ("stroma", 1)):
        (images / label).mkdir(parents=True)
        sources = sorted((SHARED / "tiles" / "kather2016-texture" / "01_TUMOR").iterdir())
        for k in range(count):
            (images / label / f"{label}{k}.tif").write_bytes(sources[k].read_bytes())
    (images / "stroma" / "stroma0.tif").write_bytes(
        sorted((SHARED / "tiles" / "kather2016-texture" / "02_STROMA").iterdir())[0].read_bytes()
    )
    config = yaml.safe_load((ROOT / "config" / "examples" / "kather.yaml").read_text())
    config["datasets"] = {
        "tiny": {
            "labels": {"source": "patches", "classes": ["stroma", "tumor"]},
            "positive_class": "tumor",
            "patches": {"root": str(images)},
        }
    }
    done = snakemake(write_config(tmp_path / "run", config), "--cores", "1")
    assert done.returncode != 0
    log = (tmp_path / "run" / "results" / "logs" / "split" / "tiny.log").read_text()
    assert "dataset 'tiny': too few patients per class" in log and "'stroma' has 1" in log
    assert not (tmp_path / "run" / "results" / "splits" / "tiny.tsv").exists()
