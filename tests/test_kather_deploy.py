"""The deploy example run as a user runs it: a tissue classifier trained on Kather's labelled patches,
mapped over the real CMU-1 slide; its exports checked against the slide's geometry."""

import json

import numpy as np
import pandas as pd
import pytest
import shapely
import tifffile
import yaml
from PIL import Image
from workflow_runs import check_stored_tables, snakemake

from conftest import CMU, ROOT, SHARED
from slidesnake.store.maps import read_probability_map
from slidesnake.wsi.probe import read_slide_info

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """config/examples/kather-deploy.yaml with its paths made absolute, run in a study folder of its own."""
    workdir = tmp_path_factory.mktemp("kather-deploy")
    config = yaml.safe_load((ROOT / "config" / "examples" / "kather-deploy.yaml").read_text())
    sheet = pd.read_csv(ROOT / "config" / "examples" / "kather-deploy.tsv", sep="\t")
    assert sheet["path"].tolist() == ["../shared/data/slides/CMU-1-Small-Region.svs"]
    sheet["path"] = [str(CMU)]
    sheet.to_csv(workdir / "slides.tsv", sep="\t", index=False)
    config["slides"] = str(workdir / "slides.tsv")
    config["datasets"]["kather"]["patches"]["root"] = str(SHARED / "tiles" / "kather2016-texture")
    # a linear probe on the images' features beside the CNN (a MobileNetV2 of random weights: no download)
    config["encoders"] = {
        "mobilenet": {
            "source": "keras_application",
            "architecture": "mobilenet_v2",
            "weights": "random",
            "input_size": 150,
            "mpp": 0.495,
            "normalization": "application",
            "licence": "Apache-2.0",
            "gated": False,
        }
    }
    config["datasets"]["kather"]["regimes"] = {"probe": {"kind": "probe", "encoder": "mobilenet"}}
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(workdir, "--cores", "2")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "results/predictions/{dataset}/images.tsv" in check_stored_tables(workdir)
    return workdir / "results"


def test_every_output_of_the_slide_exists(deployed):
    for path in (
        "classmaps/CMU-1.jpg",
        "heatmaps/CMU-1.jpg",
        "qupath/CMU-1.geojson",
        "overlays/CMU-1.ome.tif",
    ):
        assert (deployed / path).stat().st_size > 500, path
    assert Image.open(deployed / "classmaps" / "CMU-1.jpg").size[0] > 400
    assert json.loads((deployed / "splits" / "cmu.leakage.json").read_text())["ok"]


def test_the_slide_is_tiled_at_the_models_geometry(deployed):
    model = json.loads((deployed / "models" / "kather" / "config.json").read_text())
    assert model["geometry"] == {"tile_size": 150, "mpp": 0.495}
    qc = json.loads((deployed / "slides" / "CMU-1" / "tiling_qc.json").read_text())
    assert (qc["tile_size"], qc["target_mpp"], qc["scale"]) == (150, 0.495, 1.0)  # 0.499 is within 5 %


def test_map_store_holds_every_class(deployed):
    grid, attrs = read_probability_map(deployed / "maps" / "CMU-1.zarr")
    classes = attrs["classes"]
    assert len(classes) == 8 and classes[0] == "01_TUMOR"
    assert grid.shape == (2967 // 150, 2220 // 150, 8)
    predicted = pd.read_csv(deployed / "predictions" / "CMU-1.tsv", sep="\t")
    assert np.isfinite(grid[..., 0]).sum() == len(predicted)
    np.testing.assert_allclose(
        grid[predicted["row"], predicted["col"], 0], predicted["p_01_TUMOR"], atol=1e-5
    )


def test_qupath_objects_lie_inside_the_slide_one_per_predicted_tile(deployed):
    info = read_slide_info(CMU, "CMU-1")
    slide = shapely.box(0, 0, info.width, info.height)
    collection = json.loads((deployed / "qupath" / "CMU-1.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    predicted = pd.read_csv(deployed / "predictions" / "CMU-1.tsv", sep="\t")
    tiles = [f for f in collection["features"] if f["properties"]["objectType"] == "tile"]
    assert len(tiles) == len(predicted)
    for feature in collection["features"]:
        geometry = shapely.geometry.shape(feature["geometry"])
        assert slide.covers(geometry) and geometry.is_valid
        assert (
            feature["properties"]["classification"]["name"]
            in json.loads((deployed / "models" / "kather" / "config.json").read_text())["classes"]
        )
    first = shapely.geometry.shape(tiles[0]["geometry"]).bounds  # level-0 = target pixels: 0.499 um/px as is
    assert first == (predicted["x"][0], predicted["y"][0], predicted["x"][0] + 150, predicted["y"][0] + 150)


def test_overlay_covers_the_slides_physical_extent(deployed):
    info = read_slide_info(CMU, "CMU-1")
    with tifffile.TiffFile(deployed / "overlays" / "CMU-1.ome.tif") as tiff:
        pixels = tifffile.xml2dict(tiff.ome_metadata)["OME"]["Image"]["Pixels"]
        assert len(tiff.series[0].levels) >= 2  # pyramidal
        image = tiff.series[0].asarray()
    assert pixels["SizeX"] * pixels["PhysicalSizeX"] == pytest.approx(info.width * info.mpp_x)
    assert pixels["SizeY"] * pixels["PhysicalSizeY"] == pytest.approx(info.height * info.mpp_y)
    assert np.nanmax(image) <= 1 and np.isfinite(image).any() and np.isnan(image).any()


def test_the_example_config_runs_from_the_repository_root_as_documented():
    dry = snakemake(
        ROOT,
        "-n",
        "--cores",
        "1",
        "--configfile",
        "config/examples/kather-deploy.yaml",
        "--replace-workflow-config",
    )
    assert dry.returncode == 0, dry.stderr[-3000:]


def test_a_probe_learns_from_the_patch_datasets_image_features(deployed):
    from slidesnake.features.images import ImageFeatureStore

    store = ImageFeatureStore(deployed / "features" / "mobilenet" / "kather.zarr")
    entries = pd.read_csv(deployed / "entries" / "kather.tsv", sep="\t")
    assert sorted(store.items) == sorted(entries["item"].astype(str)) and store.features.shape == (24, 1280)
    assert store.attrs["encoder_attributes"]["architecture"] == "mobilenet_v2"
    regimes = pd.read_csv(deployed / "reports" / "regimes.tsv", sep="\t").set_index("regime")
    assert list(regimes.index) == ["model", "probe"]
    assert regimes.loc["probe", "training"] == "linear probe (logistic) on encoder mobilenet"
    assert regimes.loc["probe", "n"] == regimes.loc["model", "n"] > 0  # the same test images
    assert (deployed / "features" / "mobilenet" / "CMU-1.zarr").is_dir()  # the slide's too
