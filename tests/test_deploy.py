"""Deploying models on cohorts: checks before any job, confidence intervals, map agreement, exports."""

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
import tifffile

from conftest import CMU, validated_config
from slidesnake.cohorts import Geometry, check_cohorts, home_geometry
from slidesnake.errors import SlideError, StudyError
from slidesnake.exports.colours import class_colours
from slidesnake.exports.overlay import write_overlay
from slidesnake.exports.qupath import _feature, _tile_features, positive_regions, write_qupath_geojson
from slidesnake.intervals import bootstrap
from slidesnake.metrics import FUNCTIONS, agreement, level_metrics, slide_score
from slidesnake.model.card import ModelCard
from slidesnake.rules.predict import _check_geometry
from slidesnake.store.maps import MapGeometry, stitch
from slidesnake.wsi import TilePlan


def demo_config(**cohorts) -> dict:
    config = validated_config()
    config["cohorts"] = {}
    config = validated_config({**config, "cohorts": cohorts})
    return config


def sheet(rows) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["slide_id", "patient_id", "dataset", "path"])
    return table.set_index("slide_id", drop=False)


DEMO_ROWS = [
    ("A01", "PA1", "site_a", "nowhere/A01.svs"),
    ("A02", "PA2", "site_a", "nowhere/A02.svs"),
    ("B01", "PB1", "site_b", "nowhere/B01.svs"),
]


# ----------------------------------------------------------------------------- checks before any job


def test_a_cohort_of_another_sites_slides_passes():
    config = demo_config(b_by_a={"model": "site_a", "slides": "site_b"})
    check_cohorts(config, sheet(DEMO_ROWS))
    assert home_geometry(config, "b_by_a") == Geometry(0.5, 128)


def test_a_cohort_sharing_a_patient_with_the_models_training_data_is_refused():
    config = demo_config(new={"model": "site_a"})
    rows = [*DEMO_ROWS, ("N01", "PA2", "new", "nowhere/N01.svs")]
    with pytest.raises(
        StudyError, match=r"cohort 'new': patient 'PA2' has slides \['N01'\].*\['A02'\].*'site_a'"
    ):
        check_cohorts(config, sheet(rows))


def test_a_cohort_slide_with_the_bytes_of_a_training_slide_is_refused(tmp_path):
    shutil.copy(CMU, tmp_path / "train.svs")
    shutil.copy(CMU, tmp_path / "renamed-copy.svs")
    config = demo_config(new={"model": "site_a"})
    rows = [
        ("A01", "PA1", "site_a", str(tmp_path / "train.svs")),
        ("B01", "PB1", "site_b", "nowhere/B01.svs"),
        ("N01", "PN1", "new", str(tmp_path / "renamed-copy.svs")),
    ]
    with pytest.raises(
        StudyError, match=r"slide 'N01' has the same content as slide 'A01' of model 'site_a'"
    ):
        check_cohorts(config, sheet(rows))


def test_a_geometry_that_cannot_be_met_is_an_error_before_any_job():
    config = demo_config(b_by_a={"model": "site_a", "slides": "site_b"})
    config["datasets"]["site_b"]["tile_size"] = (
        224  # site_b's slides tiled at 224 px, site_a's model takes 128
    )
    with pytest.raises(
        StudyError, match=r"geometry mismatch: the model of 'site_a' takes 128 px tiles at 0.5"
    ):
        check_cohorts(config, sheet(DEMO_ROWS))


def test_a_patch_model_without_mpp_cannot_be_deployed_and_classes_must_fit():
    config = validated_config(
        {
            "datasets": {
                "kather": {
                    "labels": {"source": "patches", "classes": ["TUM", "STR"]},
                    "positive_class": "TUM",
                    "patches": {"root": "x"},
                }
            },
            "cohorts": {
                "tcga": {
                    "model": "kather",
                    "labels": {"source": "slide", "classes": ["TUM", "NORM"]},
                    "positive_class": "tumour",
                }
            },
        }
    )
    rows = [("T1", "P1", "tcga", "t1.svs")]
    with pytest.raises(StudyError) as caught:
        check_cohorts(config, sheet(rows))
    message = str(caught.value)
    assert "set 'datasets: kather: patches: mpp'" in message
    assert "classes ['NORM'] are not classes of the model of 'kather'" in message
    assert "'positive_class' = 'tumour' is not a class" in message


def test_the_store_of_another_geometry_is_refused_at_prediction(tmp_path):
    class Store:
        slide_id, path = "S1", tmp_path / "S1.zarr"
        plan = TilePlan(
            target_mpp=0.5,
            tile_size=128,
            level=0,
            level_mpp=0.5,
            scale=1.0,
            level0_per_target=1.0,
            tile_mpp=0.5,
            target_width=1000,
            target_height=800,
        )

    model = ModelCard.from_dict(
        {"dataset": "kather", "classes": ["a"], "geometry": {"tile_size": 224, "mpp": 0.5}}
    )
    with pytest.raises(SlideError, match=r"slide 'S1'.*geometry mismatch.*224 px tiles at 0.5.*128 px"):
        _check_geometry(Store(), model, 0.05)
    fits = ModelCard.from_dict(
        {"dataset": "d", "classes": ["a"], "geometry": {"tile_size": 128, "mpp": 0.51}}
    )
    _check_geometry(Store(), fits, 0.05)
    assert ModelCard.from_dict(fits.to_dict()) == fits  # the card survives its JSON


# ----------------------------------------------------------------------------- confidence intervals


def test_bootstrap_resamples_patients_not_tiles():
    """Patient A: 9 tiles, all right; patient B: 1 tile, wrong. Resampling two patients gives AA (accuracy
    1.0, chance 1/4), AB or BA (0.9, 1/2) and BB (0.0, 1/4): the 95% interval is [0, 1] and the median 0.9.
    Resampling tiles would never give 0."""
    correct = np.array([1] * 9 + [0])
    patients = np.array(["A"] * 9 + ["B"])

    def accuracy(index):
        return {"accuracy": float(correct[index].mean())}

    found = bootstrap(accuracy, patients, resamples=2000, seed=0)["accuracy"]
    assert (found.value, found.low, found.high) == (0.9, 0.0, 1.0)
    assert found.method == "patient bootstrap (2000)" and not found.note
    draws = []
    rng = np.random.default_rng(1)
    for _ in range(2000):
        draws.append(correct[rng.integers(0, 10, 10)].mean())
    assert np.percentile(draws, 2.5) > 0.5  # what tile resampling would have claimed


def test_level_metrics_give_each_metric_its_interval_and_nan_when_undefined():
    units = pd.DataFrame(
        {
            "split": ["test"] * 6,
            "item": list("abcdef"),
            "patient_id": ["p1", "p1", "p2", "p3", "p4", "p5"],
            "truth": [1, 1, 0, 0, 1, 0],
            "score": [0.9, 0.8, 0.2, 0.4, 0.7, 0.1],
        }
    )
    units["called"] = (units["score"] >= 0.5).astype(int)
    row = level_metrics(units, truth="truth", called="called", score="score", resamples=300, seed=0).iloc[0]
    assert (row["n"], row["items"], row["patients"]) == (6, 6, 5)
    assert row["auc"] == 1.0 and row["accuracy"] == 1.0
    # every resample of both classes separates them perfectly: no interval, never 1.000 (1.000-1.000)
    assert np.isnan(row["auc_ci_low"]) and row["auc_ci_method"] == "not estimable (5 patients)"
    assert (
        row["note"].startswith("AUC, accuracy, ")
        and "not estimable: the resamples of 5 patients" in row["note"]
    )
    assert row["ci_method"].startswith("not estimable (5 patients)")
    one_class = units.assign(truth=1)
    row = level_metrics(one_class, truth="truth", called="called", score="score", resamples=100, seed=0).iloc[
        0
    ]
    assert np.isnan(row["auc"]) and np.isnan(row["auc_ci_low"]) and np.isnan(row["balanced_accuracy"])
    assert np.isnan(row["specificity"]) and row["npv"] == 0.0  # 3 called negative, none truly negative
    assert "AUC, balanced accuracy, specificity not estimable: every unit is 1 (6 1, 0 not 1)" in row["note"]


def test_the_metrics_equal_scikit_learns():
    """The NumPy metrics against scikit-learn's on random draws, ties and one-class draws included."""
    from sklearn import metrics

    rng = np.random.default_rng(3)
    compared = 0
    for size in (1, 2, 5, 40, 300):
        for _ in range(40):
            truth = rng.integers(0, 3, size)
            called = np.where(rng.random(size) < 0.7, truth, rng.integers(0, 3, size))
            score = np.round(rng.random(size), 1)  # rounded: many ties
            binary = (truth == 1).astype(int)
            if 0 < binary.sum() < size:
                assert FUNCTIONS["auc"](binary, score, called) == pytest.approx(
                    metrics.roc_auc_score(binary, score), abs=1e-12
                )
                compared += 1
            else:
                assert np.isnan(FUNCTIONS["auc"](binary, score, called))
            assert FUNCTIONS["accuracy"](truth, score, called) == metrics.accuracy_score(truth, called)
            for name, sklearn_score, label in (
                ("sensitivity", metrics.recall_score, 1),
                ("specificity", metrics.recall_score, 0),
                ("ppv", metrics.precision_score, 1),
                ("npv", metrics.precision_score, 0),
            ):  # the positive class 1 against the rest (0)
                expected = sklearn_score(truth == 1, called == 1, pos_label=label == 1, zero_division=np.nan)
                assert FUNCTIONS[name](truth, score, called) == pytest.approx(
                    expected, abs=1e-12, nan_ok=True
                )
            f1 = metrics.f1_score(truth == 1, called == 1, zero_division=0)
            assert FUNCTIONS["f1"](truth, score, called) == pytest.approx(f1, abs=1e-12)
            if len(set(truth)) >= 2:
                with warnings.catch_warnings():  # a class called but absent from the truth
                    warnings.simplefilter("ignore", UserWarning)
                    balanced = metrics.balanced_accuracy_score(truth, called)
                assert FUNCTIONS["balanced_accuracy"](truth, score, called) == pytest.approx(
                    balanced, abs=1e-12
                )
            else:
                assert np.isnan(FUNCTIONS["balanced_accuracy"](truth, score, called))
    assert compared > 100


def test_slide_scores():
    p = np.array([0.1] * 18 + [0.9, 0.95])
    assert slide_score(p, "top_decile_mean") == pytest.approx(0.925)
    assert slide_score(p, "max") == 0.95 and slide_score(p, "mean") == pytest.approx(0.1825)
    assert np.isnan(slide_score(np.array([]), "mean"))


# ----------------------------------------------------------------------------- map agreement


def test_dice_and_iou_against_a_polygon_of_known_overlap():
    """Four 100 px tiles in a row; the annotation covers x 50-250 (half of tile 0, tiles 1, half of
    tile 2): 2 tiles of area. The map calls tiles 1 and 2: overlap 1.5 tiles, so Dice = 3 / 4 and
    IoU = 1.5 / 2.5."""
    from slidesnake.annotations import tile_labels
    from slidesnake.settings import LabelSettings

    tiles = pd.DataFrame({"x0": [0, 100, 200, 300], "y0": [0, 0, 0, 0]})
    labels = LabelSettings(
        source="annotations",
        classes=("normal", "tumor"),
        annotation_classes={"Tumor": "tumor"},
        unannotated="normal",
        min_fraction=0.5,
        ignore=(),
        exclude=(),
    )
    regions = [("Tumor", shapely.box(50, 0, 250, 100))]
    labelled = tile_labels(
        tiles, tile_size_level0=100, regions=regions, labels=labels, slide_id="S", annotation_path="S.json"
    )
    assert labelled["fraction_tumor"].tolist() == [0.5, 1.0, 0.5, 0.0]
    dice, iou = agreement(np.array([False, True, True, False]), labelled["fraction_tumor"].to_numpy())
    assert dice == pytest.approx(0.75) and iou == pytest.approx(0.6)
    assert agreement(np.zeros(4, bool), np.zeros(4)) != agreement(np.ones(4, bool), np.zeros(4))
    assert np.isnan(agreement(np.zeros(4, bool), np.zeros(4))[0])


# ----------------------------------------------------------------------------- maps and exports


def plan(tile=64, width=640, height=384, level0_per_target=2.0) -> TilePlan:
    return TilePlan(
        target_mpp=0.5,
        tile_size=tile,
        level=0,
        level_mpp=0.25,
        scale=2.0,
        level0_per_target=level0_per_target,
        tile_mpp=0.5,
        target_width=width,
        target_height=height,
    )


def test_overlapping_tiles_are_averaged_in_the_cells_they_share():
    geometry = MapGeometry(cell=32, plan=plan())
    tiles = pd.DataFrame({"y": [0, 0, 32], "x": [0, 32, 0], "p_a": [1.0, 0.0, 0.5]})
    grid = stitch(tiles, geometry, ["p_a"])
    assert grid.shape == (12, 20, 1)
    assert grid[0, 0, 0] == 1.0  # only the first tile
    assert grid[0, 1, 0] == 0.5  # the first two
    assert grid[1, 1, 0] == pytest.approx(0.5)  # all three: (1 + 0 + 0.5) / 3
    assert grid[1, 0, 0] == 0.75 and np.isnan(grid[3, 3, 0])


def test_regions_keep_their_holes_and_areas():
    geometry = MapGeometry(cell=64, plan=plan())
    positive = np.full((6, 10), np.nan, np.float32)
    positive[1:4, 1:4] = 0.9  # a ring around one negative cell
    positive[2, 2] = 0.1
    positive[4, 8] = 0.8  # a second, separate region
    regions = positive_regions(positive, geometry, 0.5)
    assert len(regions) == 2
    ring, cells = regions[0][0], regions[0][2]
    side = 64 * 2.0  # level-0 pixels per cell
    assert cells == 8 and len(ring.interiors) == 1 and ring.area == pytest.approx(8 * side**2)


def test_regions_match_a_cell_by_cell_union_on_a_speckled_map():
    """Many regions, some inside others' bounding boxes: each is exactly the union of its cells."""
    geometry = MapGeometry(cell=64, plan=plan())
    positive = np.random.default_rng(3).random((40, 50)).astype(np.float32)
    positive[:, :3] = np.nan
    positive[10:30, 10:30] = 0.0  # a hole frame, with an island inside another region's box
    positive[10:30, 10] = positive[10:30, 29] = positive[10, 10:30] = positive[29, 10:30] = 0.9
    positive[18:21, 18:21] = 0.95
    regions = positive_regions(positive, geometry, 0.7)
    side = 64 * 2.0
    called = np.nan_to_num(positive, nan=0.0) >= 0.7
    assert len(regions) > 50 and sum(cells for _, _, cells in regions) == called.sum()
    union = shapely.union_all([polygon for polygon, _, _ in regions])
    rows, cols = np.nonzero(called)
    expected = shapely.union_all(shapely.box(cols * side, rows * side, (cols + 1) * side, (rows + 1) * side))
    assert union.symmetric_difference(expected).area == 0
    for polygon, mean, cells in regions:
        assert polygon.area == pytest.approx(cells * side**2)
        inside = shapely.contains_xy(polygon, (cols + 0.5) * side, (rows + 0.5) * side)
        assert mean == pytest.approx(float(positive[rows[inside], cols[inside]].mean()))


def test_no_regions_on_an_empty_map_or_one_below_the_threshold():
    geometry = MapGeometry(cell=64, plan=plan())
    assert positive_regions(np.zeros((0, 0), np.float32), geometry, 0.5) == []  # an excluded slide
    assert positive_regions(np.full((3, 4), 0.2, np.float32), geometry, 0.5) == []


def test_templated_tile_features_equal_json_dumps_of_the_same_objects():
    classes = ["normal", "tumor", 'str\u00f6ma "x"']  # names that need escaping
    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.ones(3), size=50)
    ys, xs = (rng.integers(0, 10**6, 50) * 0.5).tolist(), (rng.integers(0, 10**6, 50) * 1.5).tolist()
    names = {"tumor": "Tumor"}
    lines = list(
        _tile_features(ys, xs, probabilities, side=256.0, identity="S", classes=classes, names=names)
    )
    colours = class_colours(classes)
    for k, line in enumerate(lines):
        cls = classes[int(probabilities[k].argmax())]
        name = names.get(cls, cls)
        x, y = xs[k], ys[k]
        square = shapely.box(x, y, x + 256.0, y + 256.0)  # ring from (x1, y), as the template writes it
        properties = {
            "objectType": "tile",
            "classification": {"name": name, "color": list(colours[cls])},
            "measurements": {f"P({c})": round(float(probabilities[k, j]), 5) for j, c in enumerate(classes)},
        }
        assert line == _feature(f"S/tile/{y}/{x}", square, properties)


def test_qupath_geojson_holds_every_tile_and_the_regions(tmp_path):
    geometry = MapGeometry(cell=64, plan=plan())
    tiles = pd.DataFrame({"y": [64, 64, 128], "x": [64, 128, 64], "p_normal": [0.2, 0.9, 0.3]})
    tiles["p_tumor"] = 1 - tiles["p_normal"]
    positive = stitch(tiles, geometry, ["p_tumor"])[..., 0]
    path = tmp_path / "S.geojson"
    count = write_qupath_geojson(
        tiles,
        positive,
        path,
        slide_id="S",
        geometry=geometry,
        classes=["normal", "tumor"],
        positive_class="tumor",
        threshold=0.5,
        mpp=(0.25, 0.25),
        names={"tumor": "Tumor"},  # the QuPath class the tumor was annotated as
    )
    features = json.loads(path.read_text())["features"]
    kinds = [f["properties"]["objectType"] for f in features]
    assert count == 3 and kinds == ["tile", "tile", "tile", "annotation"]
    first = features[0]
    assert first["geometry"]["coordinates"][0][0] == [256.0, 128.0]  # x0, y0 + tile side in level-0 pixels
    assert first["properties"]["classification"]["name"] == "Tumor"
    assert features[1]["properties"]["classification"]["name"] == "normal"  # no QuPath class: its own name
    assert features[-1]["properties"]["classification"]["name"] == "Tumor"
    assert first["properties"]["measurements"] == {"P(normal)": 0.2, "P(tumor)": 0.8}
    region = features[-1]["properties"]
    assert region["measurements"]["Area um^2"] == pytest.approx(2 * (128 * 0.25) ** 2)
    assert len({f["id"] for f in features}) == 4


def test_overlay_covers_exactly_the_slides_physical_extent(tmp_path):
    geometry = MapGeometry(cell=64, plan=plan())
    positive = np.random.default_rng(0).random((6, 10)).astype(np.float32)
    path = tmp_path / "S.ome.tif"
    width, height = 1403, 901  # level-0 pixels: the 10 x 6 cells of 128 px, and an untiled edge strip
    rows, cols = write_overlay(
        positive, path, geometry=geometry, width=width, height=height, mpp=(0.25, 0.26), name="S"
    )
    with tifffile.TiffFile(path) as tiff:
        assert tiff.is_ome and len(tiff.series[0].levels) >= 1
        image = tiff.series[0].asarray()
        ome = tifffile.xml2dict(tiff.ome_metadata)["OME"]["Image"]["Pixels"]
    assert image.shape == (rows, cols)
    assert ome["SizeX"] * ome["PhysicalSizeX"] == pytest.approx(width * 0.25)
    assert ome["SizeY"] * ome["PhysicalSizeY"] == pytest.approx(height * 0.26)
    # 4 overlay pixels per cell: pixel (1, 1) lies in cell (0, 0); past the map (the edge strip) is NaN
    assert image[1, 1] == positive[0, 0] and np.isnan(image[-1, -1])
