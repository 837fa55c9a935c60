"""Tests for slidesnake.demo: real SVS files and GeoJSON written to tmp_path, read back with OpenSlide."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest
from skimage.color import rgb2hed
from skimage.draw import polygon as draw_polygon

from conftest import ROOT, validated_config
from slidesnake.demo import DEMO_DATASETS, demo_sheet, main, write_demo_slide, write_demo_study
from slidesnake.demo.encoder import texture_encoder_bytes
from slidesnake.demo.sheet import DEMO_ARTEFACTS, TRAIT
from slidesnake.features.encoders import encoders_from_config
from slidesnake.features.loading import load_encoder

SLIDES = {"site_a": "A01", "site_b": "B02"}
SMALL_LEVEL0 = {"site_a": (2400, 1600), "site_b": (1200, 800)}


@pytest.fixture(scope="module")
def small_slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """One small slide per site: dataset -> (svs, geojson)."""
    out = tmp_path_factory.mktemp("demo")
    paths = {}
    for dataset, slide_id in SLIDES.items():
        svs, geo = out / f"{slide_id}.svs", out / f"{slide_id}.geojson"
        write_demo_slide(svs, geo, slide_id, dataset, small=True)
        paths[dataset] = (svs, geo)
    return paths


def _rings(geojson: Path) -> list[np.ndarray]:
    doc = json.loads(geojson.read_text())
    assert doc["type"] == "FeatureCollection"
    return [np.asarray(f["geometry"]["coordinates"][0], float) for f in doc["features"]]


def test_sheet_layout() -> None:
    sheet = demo_sheet("demo/out")
    assert list(sheet.columns) == ["slide_id", "patient_id", "dataset", "path", "annotations", "label"]
    assert len(sheet) == 56 and sheet["slide_id"].is_unique
    assert sheet["patient_id"].nunique() == 52
    assert set(sheet["dataset"]) == set(DEMO_DATASETS) == {"site_a", "site_b", "site_c"}
    assert (sheet.groupby("patient_id")["dataset"].nunique() == 1).all()
    assert sheet.groupby("dataset")["slide_id"].count().to_dict() == {
        "site_a": 12,
        "site_b": 12,
        "site_c": 32,
    }
    assert sheet.groupby("dataset")["patient_id"].nunique().to_dict() == {
        "site_a": 10,
        "site_b": 10,
        "site_c": 32,
    }
    row = sheet.set_index("slide_id").loc["A01"]
    assert row["path"] == "demo/out/A01.svs" and row["annotations"] == "demo/out/A01.geojson"
    assert row["patient_id"] == "PA1" and row["dataset"] == "site_a" and row["label"] == ""
    # the trait: site_c's slide label, in half of its patients; the other sites carry none
    trait = sheet[sheet["dataset"] == "site_c"]["label"].value_counts().to_dict()
    assert trait == {TRAIT[0]: 16, TRAIT[1]: 16}
    assert (sheet[sheet["dataset"] != "site_c"]["label"] == "").all()
    assert set(DEMO_ARTEFACTS) < set(sheet["slide_id"])
    assert sorted(DEMO_ARTEFACTS.values()) == ["blur", "fold", "pen", "sparse"]
    # the small study: the first four patients of site_a and site_b, the same ids
    small = demo_sheet(Path("demo/out"), small=True)
    assert len(small) == 12 and small["patient_id"].nunique() == 8
    assert set(small["dataset"]) == {"site_a", "site_b"}
    pd.testing.assert_frame_equal(
        small, sheet[sheet["patient_id"].isin(small["patient_id"])].reset_index(drop=True)
    )
    assert not set(DEMO_ARTEFACTS) & set(small["slide_id"])


@pytest.mark.parametrize("dataset", sorted(SLIDES))
def test_slide_opens_with_openslide(small_slides: dict, dataset: str) -> None:
    svs, _ = small_slides[dataset]
    spec = DEMO_DATASETS[dataset]
    with openslide.OpenSlide(svs) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "aperio"
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(spec["mpp"])
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(spec["mpp"])
        assert int(float(slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER])) == spec["app_mag"]
        assert slide.dimensions == SMALL_LEVEL0[dataset]
        assert slide.level_count >= 2
        w, h = slide.dimensions
        assert slide.level_dimensions[1] == (w // 4, h // 4)
        assert slide.level_downsamples[1] == pytest.approx(4.0)
        assert "thumbnail" in slide.associated_images
        assert max(slide.associated_images["thumbnail"].size) <= 768
        region = np.asarray(slide.read_region((w // 2 - 64, h // 2 - 64), 0, (128, 128)))
        assert region.shape == (128, 128, 4) and (region[..., 3] == 255).all()
        assert region[..., :3].std() > 1.0  # real pixels, not a blank tile


def test_same_slide_id_is_byte_identical(small_slides: dict, tmp_path: Path) -> None:
    svs, geo = small_slides["site_a"]
    again_svs, again_geo = tmp_path / "again.svs", tmp_path / "again.geojson"
    write_demo_slide(again_svs, again_geo, SLIDES["site_a"], "site_a", small=True)
    assert again_svs.read_bytes() == svs.read_bytes()
    assert again_geo.read_bytes() == geo.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.geojson", "again.svs"]  # no temp files left


def test_different_slide_ids_differ(small_slides: dict, tmp_path: Path) -> None:
    write_demo_slide(tmp_path / "x.svs", tmp_path / "x.geojson", "A02", "site_a", small=True)
    assert (tmp_path / "x.geojson").read_bytes() != small_slides["site_a"][1].read_bytes()


@pytest.mark.parametrize("dataset", sorted(SLIDES))
def test_geojson_polygons(small_slides: dict, dataset: str) -> None:
    _, geo = small_slides[dataset]
    doc = json.loads(geo.read_text())
    w, h = SMALL_LEVEL0[dataset]
    assert 1 <= len(doc["features"]) <= 2
    ids = set()
    for feat in doc["features"]:
        assert feat["type"] == "Feature"
        ids.add(feat["id"])
        assert feat["geometry"]["type"] == "Polygon"
        assert feat["properties"]["objectType"] == "annotation"
        assert feat["properties"]["classification"] == {"name": "Tumor", "color": [200, 0, 0]}
        ring = feat["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 6
        xy = np.asarray(ring, float)
        assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= w).all()
        assert (xy[:, 1] >= 0).all() and (xy[:, 1] <= h).all()
        assert np.allclose(xy, np.round(xy, 1))
    assert len(ids) == len(doc["features"])


@pytest.mark.parametrize("dataset", sorted(SLIDES))
def test_tumor_looks_different_from_normal_tissue(small_slides: dict, dataset: str) -> None:
    svs, geo = small_slides[dataset]
    with openslide.OpenSlide(svs) as slide:
        w, h = slide.dimensions
        rgb = np.asarray(slide.read_region((0, 0), 0, (w, h)).convert("RGB")).astype(np.float32)
    inside = np.zeros((h, w), bool)
    for ring in _rings(geo):
        rr, cc = draw_polygon(ring[:, 1], ring[:, 0], (h, w))
        inside[rr, cc] = True
    gray = rgb.mean(axis=2)
    tissue = gray < 225
    tumor, normal = inside & tissue, ~inside & tissue

    assert 0.3 < tissue.mean() < 0.55
    assert 0.2 < tumor.sum() / tissue.sum() < 0.45
    # outlines drawn a little generously, as annotators do: mostly tissue, some glass at the tissue's edge
    assert (inside & ~tissue).sum() < 0.08 * inside.sum()
    # more hematoxylin in the tumor (crowded, larger nuclei), though inflamed stroma and glands overlap it
    hematoxylin = rgb2hed(rgb.astype(np.uint8))[..., 0]
    assert hematoxylin[tumor].mean() > 1.25 * hematoxylin[normal].mean()
    background = gray[~tissue & ~inside]
    assert background.mean() > 235 and np.median(background) > 235
    for corner in (rgb[:32, :32], rgb[:32, -32:], rgb[-32:, :32], rgb[-32:, -32:]):
        assert corner.mean() > 230


def test_sites_have_different_stains(small_slides: dict) -> None:
    means = {}
    for dataset, (svs, _) in small_slides.items():
        with openslide.OpenSlide(svs) as slide:
            level1 = slide.read_region((0, 0), 1, slide.level_dimensions[1]).convert("RGB")
            rgb = np.asarray(level1).astype(float)
        tissue = rgb.mean(axis=2) < 225
        means[dataset] = rgb[tissue].mean(axis=0)
    # site_b is bluer (relatively less red), site_a pinker
    a, b = means["site_a"], means["site_b"]
    assert a[0] - a[2] > b[0] - b[2] + 10


def test_unknown_dataset_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="site_z"):
        write_demo_slide(tmp_path / "x.svs", tmp_path / "x.geojson", "Z01", "site_z", small=True)


def test_write_demo_study_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    main([str(out), "--small"])
    printed = capsys.readouterr().out
    assert str(out) in printed
    sheet = pd.read_csv(out / "slides.tsv", sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(sheet, demo_sheet(out, small=True))
    for row in sheet.itertuples(index=False):
        assert Path(row.path).is_file() and Path(row.annotations).is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    with openslide.OpenSlide(sheet["path"].iloc[-1]) as slide:
        assert slide.dimensions == SMALL_LEVEL0["site_b"]
    again = write_demo_study(str(out), small=True)
    pd.testing.assert_frame_equal(again, demo_sheet(str(out), small=True))


def test_the_demo_encoder_is_the_committed_file() -> None:
    """The demo's generic encoder: written again byte for byte, its digest the config's, 112 features a
    tile, the same for a tile alone or in a batch."""
    data = texture_encoder_bytes()
    committed = ROOT / "config" / "encoders" / "demo_texture.onnx"
    assert committed.read_bytes() == data
    entry = validated_config()["encoders"]["demo_texture"]
    assert entry["sha256"]["config/encoders/demo_texture.onnx"] == hashlib.sha256(data).hexdigest()
    encoder = load_encoder(
        encoders_from_config({"demo_texture": entry})["demo_texture"], base_dir=ROOT, threads=1
    )
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    features = encoder.embed(tiles)
    assert features.shape == (3, 112) and features.dtype == np.float32 and np.isfinite(features).all()
    np.testing.assert_array_equal(encoder.embed(tiles[:1]), features[:1])
