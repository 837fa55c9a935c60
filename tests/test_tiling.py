import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest
import tifffile
import zarr

from conftest import CMU, SLIDES
from slidesnake.io import read_json, read_table
from slidesnake.slide import READERS, SlideError, SlideReader, read_slide_info
from slidesnake.stages import audit_table, detect_tissue, slide_info, tile_slide
from slidesnake.tiling import (
    COMPRESSORS,
    open_image,
    read_tile_index,
    read_tiles,
    store_attrs,
    write_tile_store,
)
from slidesnake.tissue import sharpness, tile_grid, tissue_mask


def _chunk_files(store: Path) -> list[Path]:
    return [p for p in (store / "image" / "c").rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def cmu_store(tmp_path_factory):
    info = read_slide_info(CMU, "CMU-1")
    overview = SlideReader(info).read_overview(4.0)
    grid = tile_grid(info, 224, tissue_mask(overview, 4.0), 4.0)
    kept = grid[grid["tissue_fraction"] >= 0.5]
    store = tmp_path_factory.mktemp("tiles") / "CMU-1.zarr"
    index = write_tile_store(info, kept, 224, store, threads=2)
    return info, grid, kept, index, store


def test_tissue_mask_finds_tissue_on_the_real_slide(cmu_store):
    info, grid, kept, _, _ = cmu_store
    # CMU-1-Small-Region is a skin section with white space around it
    assert 0.2 < (grid["tissue_fraction"] > 0).mean() < 0.9
    assert 10 < len(kept) < len(grid)
    assert grid["tissue_fraction"].between(0, 1).all()


def test_blank_image_has_no_tissue():
    blank = np.full((200, 300, 3), 243, np.uint8)
    blank[..., 1] = 241
    assert not tissue_mask(blank, 4.0).any()


def test_store_layout_chunk_per_tile_and_only_tissue_written(cmu_store):
    info, grid, kept, index, store = cmu_store
    image = open_image(store)
    assert image.shape == (2967, 2220, 3)
    assert image.chunks == (224, 224, 3)
    assert image.metadata.zarr_format == 3
    assert len(_chunk_files(store)) == len(kept) == len(index)
    attrs = store_attrs(store)
    assert (attrs["tile_size"], attrs["reader"], attrs["compressor"], attrs["lossless"]) == (
        224,
        "tifffile",
        "zstd",
        True,
    )
    pd.testing.assert_frame_equal(read_tile_index(store)[["row", "col"]], index[["row", "col"]])
    assert not list(store.parent.glob(".*tmp"))


def test_store_carries_ngff_multiscales_for_viewers(cmu_store):
    info, _, _, _, store = cmu_store
    ome = zarr.open_group(store, mode="r").attrs["ome"]
    assert ome["version"] == "0.5"
    (multiscale,) = ome["multiscales"]
    assert [(a["name"], a["type"]) for a in multiscale["axes"]] == [
        ("y", "space"),
        ("x", "space"),
        ("c", "channel"),
    ]
    (dataset,) = multiscale["datasets"]
    assert dataset["path"] == "image"
    assert dataset["coordinateTransformations"] == [
        {"type": "scale", "scale": [info.tile_mpp, info.tile_mpp, 1.0]}
    ]
    assert [c["color"] for c in ome["omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]


def test_tile_index_sharpness_is_the_stored_tiles_blur_score(cmu_store):
    _, _, _, index, store = cmu_store
    tiles = read_tiles(open_image(store), index, 224)
    np.testing.assert_allclose(index["sharpness"], sharpness(tiles), rtol=1e-3)


def test_stored_tiles_equal_openslide_pixels(cmu_store):
    _, grid, _, index, store = cmu_store
    slide = openslide.OpenSlide(str(CMU))
    tiles = read_tiles(open_image(store), index.iloc[:3], 224)
    for tile, (_, row) in zip(tiles, index.iloc[:3].iterrows(), strict=True):
        reference = np.asarray(slide.read_region((int(row.x0), int(row.y0)), 0, (224, 224)))[..., :3]
        np.testing.assert_array_equal(tile, reference)
    background = grid[grid["tissue_fraction"] == 0].iloc[0]
    y, x = int(background.y), int(background.x)
    assert (open_image(store)[y : y + 224, x : x + 224] == 255).all()


@pytest.mark.parametrize("reader", READERS)
def test_resampled_tiles_match_an_independent_reference(small_study, tmp_path, reader):
    """A 0.25 um/px slide tiled at 0.5 um/px equals OpenSlide level 0 averaged over 2x2 blocks."""
    path = small_study / "A01.svs"
    info = read_slide_info(path, "A01", target_mpp=0.5)
    assert (info.level, info.scale, info.reader) == (0, 2.0, "tifffile")  # the fast path by default
    info = dataclasses.replace(info, reader=reader)
    tile = 96  # the 1200 x 800 px target image is not a multiple of 96
    assert info.target_width % tile and info.target_height % tile
    overview = SlideReader(info).read_overview(4.0)
    grid = tile_grid(info, tile, tissue_mask(overview, 4.0), 4.0)
    assert grid["col"].max() == info.target_width // tile - 1
    kept = grid[grid["tissue_fraction"] > 0.5]
    store = tmp_path / "A01.zarr"
    index = write_tile_store(info, kept, tile, store)
    assert open_image(store).shape == (800, 1200, 3)
    assert store_attrs(store)["reader"] == reader
    slide = openslide.OpenSlide(str(path))
    for _, row in index.sample(5, random_state=0).iterrows():
        level0 = np.asarray(slide.read_region((int(row.x0), int(row.y0)), 0, (2 * tile, 2 * tile)))[..., :3]
        reference = level0.reshape(tile, 2, tile, 2, 3).astype(float).mean(axis=(1, 3))
        stored = open_image(store)[int(row.y) : int(row.y) + tile, int(row.x) : int(row.x) + tile]
        assert np.abs(stored.astype(float) - reference).max() <= 1.0


def test_failed_tiling_leaves_no_store(tmp_path):
    info = read_slide_info(CMU, "CMU-1")
    broken = dataclasses.replace(info, path=str(SLIDES / "bad" / "unreadable-tiles.svs"))
    tiles = pd.DataFrame(
        {"row": [0], "col": [0], "y": [0], "x": [0], "x0": [0], "y0": [0], "tissue_fraction": [1.0]}
    )
    store = tmp_path / "broken.zarr"
    with pytest.raises(SlideError, match="CMU-1.*unreadable-tiles.svs"):
        write_tile_store(info=broken, tiles=tiles, tile_size=224, store_path=store)
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_compressor_is_a_config_error(tmp_path):
    info = read_slide_info(CMU, "CMU-1")
    with pytest.raises(ValueError, match="tiling: compressor"):
        write_tile_store(
            info, pd.DataFrame(columns=["row", "col"]), 224, tmp_path / "x.zarr", compressor="gzip9"
        )


def test_empty_tile_list_gives_an_empty_but_valid_store(tmp_path):
    info = read_slide_info(CMU, "CMU-1")
    empty = pd.DataFrame(columns=["row", "col", "y", "x", "x0", "y0", "tissue_fraction"])
    index = write_tile_store(info, empty, 224, tmp_path / "empty.zarr")
    assert index.empty
    assert read_tile_index(tmp_path / "empty.zarr").empty
    assert zarr.open_group(tmp_path / "empty.zarr", mode="r")["image"].nchunks_initialized == 0


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_every_compressor_reads_back_through_zarr(cmu_store, tmp_path, compressor):
    info, _, kept, _, zstd_store = cmu_store
    some = kept.iloc[:12]
    store = tmp_path / f"{compressor}.zarr"
    write_tile_store(info, some, 224, store, compressor=compressor)
    stored = read_tiles(open_image(store), some, 224)
    expected = read_tiles(open_image(zstd_store), some, 224)
    assert len(_chunk_files(store)) == len(some)
    assert store_attrs(store)["compressor"] == compressor
    if store_attrs(store)["lossless"]:
        np.testing.assert_array_equal(stored, expected)
    else:  # JPEG at quality 90 (4:2:0 chroma): close to the tiles and far smaller than zstd
        error = np.abs(stored.astype(float) - expected)
        assert error.mean() < 6 and np.percentile(error, 99) < 30
        zstd_bytes = sum(p.stat().st_size for p in _chunk_files(zstd_store)) * len(some) / len(kept)
        assert sum(p.stat().st_size for p in _chunk_files(store)) < zstd_bytes / 3
        # any process that opens stores through slidesnake decodes the JPEG chunks
        code = f"from slidesnake.tiling import open_image; print(open_image({str(store)!r})[:].mean() > 0)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "True"


def write_blank_svs(path, width=1200, height=800):
    """An Aperio SVS of empty glass: no tissue anywhere."""
    glass = np.full((height, width, 3), (243, 241, 242), np.uint8)
    description = (
        f"Aperio Image Library v12.0.15 \r\n{width}x{height} [0,0 {width}x{height}] (256x256) "
        "JPEG/RGB Q=85|AppMag = 20|MPP = 0.5"
    )
    tifffile.imwrite(
        path,
        glass,
        tile=(256, 256),
        compression="jpeg",
        photometric="rgb",
        description=description,
        metadata=None,
    )
    return path


def test_a_slide_without_tissue_goes_through_every_ingest_stage(tmp_path):
    config = {
        "resolution": {"target_mpp": 0.5, "tolerance": 0.05},
        "tissue": {
            "mask_mpp": 4.0,
            "max_brightness": 0.9,
            "min_saturation": 0.05,
            "closing_um": 16.0,
            "min_object_um2": 10000,
            "min_tissue_fraction": 0.5,
        },
        "tiling": {"tile_size": 128, "compressor": "zstd"},
    }
    path = write_blank_svs(tmp_path / "glass.svs")
    out = {name: str(tmp_path / name) for name in ("info.json", "grid.tsv", "tissue.json", "tiling.json")}
    slide_info(str(path), "glass", out["info.json"], config["resolution"])
    detect_tissue(
        out["info.json"],
        config["tissue"],
        128,
        str(tmp_path / "thumb.png"),
        str(tmp_path / "mask.png"),
        out["grid.tsv"],
        out["tissue.json"],
    )
    qc = read_json(out["tissue.json"])
    assert qc["no_tissue"] and qc["tiles_kept"] == 0 and qc["tissue_area_mm2"] == 0
    assert len(read_table(out["grid.tsv"])) == (800 // 128) * (1200 // 128)
    tile_slide(
        out["info.json"], out["grid.tsv"], config["tiling"], str(tmp_path / "glass.zarr"), out["tiling.json"]
    )
    assert read_tile_index(tmp_path / "glass.zarr").empty
    assert read_json(out["tiling.json"])["blur_score"] is None
    audit_table([out["info.json"]], [out["tissue.json"]], [out["tiling.json"]], str(tmp_path / "slides.tsv"))
    row = read_table(tmp_path / "slides.tsv").iloc[0]
    assert (row["slide_id"], row["reader"], bool(row["no_tissue"]), row["tiles_written"]) == (
        "glass",
        "tifffile",
        True,
        0,
    )


def test_tile_hashes_find_the_same_tiles_in_a_copy_of_a_slide(cmu_store, tmp_path):
    from slidesnake.labelling import _slides_sharing_tiles

    info, _, kept, index, _ = cmu_store
    copy = write_tile_store(
        dataclasses.replace(info, slide_id="CMU-1-copy"), kept, 224, tmp_path / "copy.zarr"
    )
    assert index["content_hash"].is_unique
    assert copy["content_hash"].tolist() == index["content_hash"].tolist()
    assert read_tile_index(tmp_path / "copy.zarr")["content_hash"].tolist() == index["content_hash"].tolist()
    hashes = [
        pd.DataFrame({"item": "CMU-1", "hash": index["content_hash"]}),
        pd.DataFrame({"item": "CMU-1-copy", "hash": copy["content_hash"].iloc[:3]}),
        pd.DataFrame({"item": "other", "hash": [12345]}),
    ]
    assert _slides_sharing_tiles(hashes) == [["CMU-1", "CMU-1-copy"]]
