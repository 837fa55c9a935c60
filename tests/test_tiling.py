import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openslide
import pandas as pd
import pytest
import zarr
from corrupt import corrupt_tiles, truncate

from conftest import CMU, SLIDES, defaults
from slidesnake.audit import AUDIT_TABLE
from slidesnake.demo import write_demo_slide
from slidesnake.demo.svs import write_slide
from slidesnake.errors import SlideError, StudyError
from slidesnake.io import read_json
from slidesnake.rules.ingest import audit, ingest
from slidesnake.settings import ResolutionPolicy, TissueSettings
from slidesnake.slide_folder import slide_file
from slidesnake.store import TileStore
from slidesnake.store.codecs import COMPRESSORS, make_codec
from slidesnake.store.writer import write_tile_store
from slidesnake.tissue import GRID_TABLE, sharpness, tile_grid, tissue_mask
from slidesnake.wsi import plan_tiling
from slidesnake.wsi.probe import read_slide_info
from slidesnake.wsi.reader import READERS, SlideReader

TISSUE = TissueSettings.from_config(defaults("tissue"))


def _chunk_files(store: Path) -> list[Path]:
    """The shard files of a store's image (each holds up to 32 x 32 tile chunks)."""
    return [p for p in (store / "image" / "c").rglob("*") if p.is_file()]


def _plan(info, tile_size=224, target_mpp=0.5):
    return plan_tiling(
        info, ResolutionPolicy(target_mpp=target_mpp, tolerance=0.05, mpp_override=None), tile_size
    )


def _grid(info, plan):
    return tile_grid(plan, tissue_mask(SlideReader(info).read_overview(4.0), TISSUE), 4.0)


def write_store(info, plan, tiles, path, compressor="zstd", threads=1, jpeg_dct_scaling=True):
    codec = make_codec(compressor, jpeg_quality=90)
    return write_tile_store(
        info=info,
        plan=plan,
        tiles=tiles,
        path=path,
        codec=codec,
        threads=threads,
        jpeg_dct_scaling=jpeg_dct_scaling,
    )


@pytest.fixture(scope="module")
def cmu_store(tmp_path_factory):
    info = read_slide_info(CMU, "CMU-1")
    plan = _plan(info)
    grid = _grid(info, plan)
    kept = grid[grid["tissue_fraction"] >= 0.5]
    store = tmp_path_factory.mktemp("tiles") / "CMU-1.zarr"
    index = write_store(info, plan, kept, store, threads=2)
    return info, plan, grid, kept, index, store


def test_tissue_mask_finds_tissue_on_the_real_slide(cmu_store):
    info, _, grid, kept, _, _ = cmu_store
    # CMU-1-Small-Region is a skin section with white space around it
    assert 0.2 < (grid["tissue_fraction"] > 0).mean() < 0.9
    assert 10 < len(kept) < len(grid)
    assert grid["tissue_fraction"].between(0, 1).all()


def test_blank_image_has_no_tissue():
    blank = np.full((200, 300, 3), 243, np.uint8)
    blank[..., 1] = 241
    assert not tissue_mask(blank, TISSUE).any()


def test_store_layout_chunk_per_tile_sharded_and_only_tissue_written(cmu_store):
    info, plan, grid, kept, index, store = cmu_store
    tiles = TileStore(store)
    assert tiles.image.shape == (2967, 2220, 3)
    assert tiles.image.chunks == (224, 224, 3)
    assert tiles.image.shards == (32 * 224, 32 * 224, 3)
    assert tiles.image.metadata.zarr_format == 3
    assert len(_chunk_files(store)) == 1 and len(kept) == len(index)  # one shard file holds them all
    stored = {(r, c) for r, c in zip(index["row"], index["col"], strict=True)}
    for row in range(plan.grid_shape[0]):  # every other tile of the grid reads white
        for col in range(plan.grid_shape[1]):
            if (row, col) not in stored and (row + col) % 3 == 0:
                assert (tiles.image[row * 224 : (row + 1) * 224, col * 224 : (col + 1) * 224] == 255).all()
    assert (tiles.tile_size, tiles.attrs["reader"], tiles.attrs["compressor"], tiles.attrs["lossless"]) == (
        224,
        "tifffile",
        "zstd",
        True,
    )
    assert tiles.plan == plan and tiles.slide_id == "CMU-1"
    pd.testing.assert_frame_equal(tiles.index[["row", "col"]], index[["row", "col"]])
    assert not list(store.parent.glob(".*tmp"))


def test_store_carries_ngff_multiscales_for_viewers(cmu_store):
    _, plan, _, _, _, store = cmu_store
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
        {"type": "scale", "scale": [plan.tile_mpp, plan.tile_mpp, 1.0]}
    ]
    assert [c["color"] for c in ome["omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]


@pytest.mark.parametrize("compressor", ["zstd", "jpeg"])
def test_hand_written_shards_equal_what_zarr_writes_itself(cmu_store, tmp_path, compressor):
    """Oracle: the same tiles written through Zarr's own API (sharding codec, same codecs) read the same."""
    info, _, _, _, _, _ = cmu_store
    plan = _plan(info, tile_size=32)  # small tiles: a 92 x 69 grid, 3 x 3 shards
    grid = _grid(info, plan)
    kept = grid[grid["tissue_fraction"] >= 0.5]
    store = tmp_path / "ours.zarr"
    index = write_store(info, plan, kept, store, compressor=compressor, threads=2)
    ours = TileStore(store).image
    shards = {(r // 32, c // 32) for r, c in zip(index["row"], index["col"], strict=True)}
    assert len(_chunk_files(store)) == len(shards) > 4
    codec = make_codec(compressor, jpeg_quality=90)
    theirs = zarr.create_array(
        tmp_path / "zarr.zarr",
        shape=ours.shape,
        chunks=ours.chunks,
        shards=ours.shards,
        dtype="uint8",
        fill_value=255,
        serializer=codec.serializer,
        compressors=codec.compressors,
    )
    whole = np.full(ours.shape, 255, np.uint8)
    with SlideReader(info) as reader:
        for y, x in zip(index["y"], index["x"], strict=True):
            whole[y : y + 32, x : x + 32] = reader.read_target(plan, y, x, 32, 32)
    theirs[:] = whole  # zarr leaves out the chunks that are all fill value, as we do
    np.testing.assert_array_equal(ours[:], theirs[:])
    if compressor == "zstd":
        np.testing.assert_array_equal(ours[:], whole)  # lossless: the pieces are the whole
    assert ours.nchunks_initialized == theirs.nchunks_initialized


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_shard_reads_equal_zarr_reads(cmu_store, tmp_path, compressor):
    """Oracle: the fast shard reader (one file read per shard) gives Zarr's pixels, white where no tile is."""
    info, _, _, _, _, _ = cmu_store
    plan = _plan(info, tile_size=32)  # 3 x 3 shards
    kept = _grid(info, plan).query("tissue_fraction >= 0.5")
    write_store(info, plan, kept, tmp_path / "s.zarr", compressor=compressor)
    store = TileStore(tmp_path / "s.zarr")
    assert store._chunk_decoder is not None
    rows, cols = store.image.shape[0] // 32, store.image.shape[1] // 32  # the whole tiles
    every = pd.DataFrame([(r, c) for r in range(0, rows, 2) for c in range(cols)], columns=["row", "col"])
    corners = every.assign(y=every["row"] * 32, x=every["col"] * 32)  # tissue, glass, every shard
    read = {}
    for positions, tiles in store.windows(corners):
        read.update(zip(positions.tolist(), tiles, strict=True))
    assert sorted(read) == list(range(len(corners)))
    expected = store.read_tiles(corners)  # through Zarr
    np.testing.assert_array_equal(np.stack([read[k] for k in range(len(corners))]), expected)
    assert (expected == 255).all(axis=(1, 2, 3)).sum() > 100  # tiles not stored read as the fill value


def test_shard_reader_refuses_a_layout_it_does_not_know_and_a_damaged_index(cmu_store, tmp_path):
    """A store Zarr wrote with its index first is read through Zarr; a damaged shard index is an error."""
    info, plan, _, kept, index, zstd_store = cmu_store
    source = TileStore(zstd_store)
    moved = tmp_path / "start.zarr"
    shutil.copytree(zstd_store, moved)
    shutil.rmtree(moved / "image")
    codec = make_codec("zstd", jpeg_quality=90)
    image = zarr.open_group(moved, mode="r+").create_array(
        "image",
        shape=source.image.shape,
        chunks=source.image.chunks,
        shards={"shape": source.image.shards, "index_location": "start"},
        dtype="uint8",
        fill_value=255,
        compressors=codec.compressors,
    )
    image[:] = source.image[:]
    assert TileStore(moved)._chunk_decoder is None
    corners = index[["y", "x"]].iloc[:40]
    first = next(TileStore(moved).windows(corners))
    np.testing.assert_array_equal(first[1], source.read_tiles(corners.iloc[first[0]]))
    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(zstd_store, damaged)
    shard = _chunk_files(damaged)[0]
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF  # a bit of the shard index
    shard.write_bytes(bytes(data))
    with pytest.raises(OSError, match="CRC32C"):
        for _ in TileStore(damaged).windows(index[["y", "x"]]):
            pass


def test_store_files_stay_few(cmu_store, tmp_path):
    info, _, _, _, _, _ = cmu_store
    plan = _plan(info, tile_size=32)
    kept = _grid(info, plan).query("tissue_fraction >= 0.5")
    store = tmp_path / "few.zarr"
    write_store(info, plan, kept, store)
    files = [p for p in store.rglob("*") if p.is_file()]
    assert len(kept) > 2000 and len(files) <= 7 + 9  # metadata, the two index arrays, nine shards


def test_tile_index_sharpness_is_the_stored_tiles_blur_score(cmu_store):
    *_, index, store = cmu_store
    written = TileStore(store)
    tiles = written.read_tiles(index)
    np.testing.assert_allclose(
        index["sharpness"], sharpness(tiles, tile_mpp=written.plan.tile_mpp), rtol=1e-3
    )


def test_the_blur_score_measures_the_same_detail_at_every_resolution_and_falls_with_blur():
    """A tile at 0.5 um/px and the same tissue at 0.25 um/px (each pixel doubled: no finer detail) score
    alike; a blurred tile scores far lower."""
    from scipy import ndimage

    tile = np.random.default_rng(3).integers(60, 230, (128, 128, 3)).astype(np.uint8)
    tile = ndimage.gaussian_filter(tile, (1.0, 1.0, 0)).astype(np.uint8)
    doubled = np.repeat(np.repeat(tile, 2, axis=0), 2, axis=1)
    at_half, at_quarter = sharpness(tile, tile_mpp=0.5), sharpness(doubled, tile_mpp=0.25)
    assert at_quarter == pytest.approx(float(at_half), rel=0.02)
    blurred = ndimage.gaussian_filter(tile, (2.0, 2.0, 0))
    assert sharpness(blurred, tile_mpp=0.5) < 0.3 * at_half


def test_stored_tiles_equal_openslide_pixels(cmu_store):
    _, _, grid, _, index, store = cmu_store
    slide = openslide.OpenSlide(str(CMU))
    tiles = TileStore(store).read_tiles(index.iloc[:3])
    for stored, (_, row) in zip(tiles, index.iloc[:3].iterrows(), strict=True):
        reference = np.asarray(slide.read_region((int(row.x0), int(row.y0)), 0, (224, 224)))[..., :3]
        np.testing.assert_array_equal(stored, reference)
    background = grid[grid["tissue_fraction"] == 0].iloc[0]
    y, x = int(background.y), int(background.x)
    assert (TileStore(store).read_tile(y, x) == 255).all()


@pytest.mark.parametrize("jpeg_dct_scaling", [False, True])
@pytest.mark.parametrize("reader", READERS)
def test_resampled_tiles_match_an_independent_reference(small_study, tmp_path, reader, jpeg_dct_scaling):
    """A 0.25 um/px slide tiled at 0.5 um/px equals OpenSlide level 0 averaged over 2x2 blocks; with
    DCT scaling (fast path only), its JPEG tiles decoded at half size are within a few grey levels.
    """
    path = small_study / "A01.svs"
    info = read_slide_info(path, "A01")
    side = 96  # the 1200 x 800 px target image is not a multiple of 96
    plan = _plan(info, side)
    assert (plan.level, plan.scale, info.reader) == (0, 2.0, "tifffile")  # the fast path by default
    info = dataclasses.replace(info, reader=reader)
    assert plan.target_width % side and plan.target_height % side
    grid = _grid(info, plan)
    assert grid["col"].max() == plan.target_width // side - 1
    kept = grid[grid["tissue_fraction"] > 0.5]
    store = tmp_path / "A01.zarr"
    index = write_store(info, plan, kept, store, jpeg_dct_scaling=jpeg_dct_scaling)
    assert TileStore(store).image.shape == (800, 1200, 3)
    assert TileStore(store).attrs["reader"] == reader
    dct = jpeg_dct_scaling and reader == "tifffile"
    assert TileStore(store).attrs["resampling"] == ("jpeg-dct" if dct else "area")
    slide = openslide.OpenSlide(str(path))
    differences = []
    for _, row in index.sample(5, random_state=0).iterrows():
        level0 = np.asarray(slide.read_region((int(row.x0), int(row.y0)), 0, (2 * side, 2 * side)))[..., :3]
        reference = level0.reshape(side, 2, side, 2, 3).astype(float).mean(axis=(1, 3))
        stored = TileStore(store).read_tile(int(row.y), int(row.x))
        differences.append(np.abs(stored.astype(float) - reference))
    difference = np.stack(differences)
    if dct:  # measured: mean 0.2, 99% within 1.5, max 9 grey levels
        assert 0 < difference.mean() < 0.5 and np.percentile(difference, 99) <= 2 and difference.max() < 20
    else:
        assert difference.max() <= 1.0


def test_failed_tiling_leaves_no_store(tmp_path):
    info = read_slide_info(CMU, "CMU-1")
    broken = dataclasses.replace(info, path=str(SLIDES / "bad" / "unreadable-tiles.svs"))
    tiles = pd.DataFrame(
        {"row": [0], "col": [0], "y": [0], "x": [0], "x0": [0], "y0": [0], "tissue_fraction": [1.0]}
    )
    store = tmp_path / "broken.zarr"
    with pytest.raises(SlideError, match="CMU-1.*unreadable-tiles.svs"):
        write_store(broken, _plan(info), tiles, store)
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []


def test_unknown_compressor_is_a_config_error():
    with pytest.raises(StudyError, match="tiling: compressor"):
        make_codec("gzip9", jpeg_quality=90)


def test_empty_tile_list_gives_an_empty_but_valid_store(tmp_path):
    info = read_slide_info(CMU, "CMU-1")
    empty = pd.DataFrame(columns=["row", "col", "y", "x", "x0", "y0", "tissue_fraction"])
    index = write_store(info, _plan(info), empty, tmp_path / "empty.zarr")
    assert index.empty
    assert TileStore(tmp_path / "empty.zarr").index.empty
    assert zarr.open_group(tmp_path / "empty.zarr", mode="r")["image"].nchunks_initialized == 0


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_every_compressor_reads_back_through_zarr(cmu_store, tmp_path, compressor):
    info, plan, _, kept, _, zstd_store = cmu_store
    some = kept.iloc[:12]
    store = tmp_path / f"{compressor}.zarr"
    write_store(info, plan, some, store, compressor=compressor)
    stored = TileStore(store).read_tiles(some)
    expected = TileStore(zstd_store).read_tiles(some)
    assert len(_chunk_files(store)) == 1
    assert TileStore(store).attrs["compressor"] == compressor
    if TileStore(store).attrs["lossless"]:
        np.testing.assert_array_equal(stored, expected)
    else:  # JPEG at quality 90 (4:2:0 chroma): close to the tiles and far smaller than zstd
        error = np.abs(stored.astype(float) - expected)
        assert error.mean() < 6 and np.percentile(error, 99) < 30
        zstd_bytes = sum(p.stat().st_size for p in _chunk_files(zstd_store)) * len(some) / len(kept)
        assert sum(p.stat().st_size for p in _chunk_files(store)) < zstd_bytes / 3
        # any process that opens stores through slidesnake decodes the JPEG chunks
        code = (
            f"import slidesnake.store, zarr; print(zarr.open_array({str(store / 'image')!r})[:].mean() > 0)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "True"


def write_blank_svs(path, width=1200, height=800):
    """An Aperio SVS of empty glass: no tissue anywhere."""
    write_slide(
        path, np.full((height, width, 3), (243, 241, 242), np.uint8), mpp=0.5, pyramid=False, thumbnail=False
    )
    return path


def _ingest(path, tmp_path, on_bad_slide, slide_id="glass", tile_size=128):
    """Rule ingest on one slide, as the workflow runs it; the paths of what it writes."""
    slide_dir, store = tmp_path / "slide", tmp_path / "glass.zarr"
    ingest(
        slide_path=str(path),
        slide_id=slide_id,
        slide_settings={
            "sheet_mpp": None,
            "resolution": defaults("resolution"),
            "tiling": {**defaults("tiling"), "tile_size": tile_size},
        },
        mpp_override=None,
        tissue_config=defaults("tissue"),
        on_bad_slide=on_bad_slide,
        slide_dir=str(slide_dir),
        store=str(store),
        threads=1,
    )
    files = {"info.json": "info", "tissue.json": "tissue_qc", "grid.tsv": "grid", "tiling.json": "tiling_qc"}
    return {
        "slide_dir": str(slide_dir),
        "glass.zarr": str(store),
        **{key: slide_file(str(slide_dir), name) for key, name in files.items()},
    }


def test_a_slide_without_tissue_is_carried_through_as_excluded(tmp_path):
    out = _ingest(write_blank_svs(tmp_path / "glass.svs"), tmp_path, "skip")
    assert read_json(out["tissue.json"])["tissue_area_mm2"] == 0
    qc = read_json(out["tiling.json"])
    assert qc["no_tissue"] and qc["tiles_kept"] == 0 and qc["blur_score"] is None
    assert (qc["status"], qc["reason"].split(" (")[0]) == ("excluded", "no tissue tile found")
    assert len(GRID_TABLE.read(out["grid.tsv"])) == (800 // 128) * (1200 // 128)
    store = TileStore(out["glass.zarr"])
    assert store.index.empty and store.status == "excluded" and store.reason == qc["reason"]
    audit(slide_dirs=[out["slide_dir"]], out_tsv=str(tmp_path / "slides.tsv"), qc=defaults("qc"))
    row = AUDIT_TABLE.read(tmp_path / "slides.tsv").iloc[0]
    assert list(row.index[:4]) == ["slide_id", "dataset", "status", "reason"]
    assert (row["slide_id"], row["reader"], row["status"], row["tiles_written"], row["level"]) == (
        "glass",
        "tifffile",
        "excluded",
        0,
        0,
    )
    assert row["flags"].startswith("excluded: no tissue tile found")


def test_with_on_bad_slide_fail_a_slide_without_tissue_fails_its_tile_job(tmp_path):
    with pytest.raises(SlideError, match=r"slide 'glass'.*no tissue tile found.*on_bad_slide: fail"):
        _ingest(write_blank_svs(tmp_path / "glass.svs"), tmp_path, "fail")
    assert not (tmp_path / "glass.zarr").exists()


def test_a_slide_smaller_than_a_tile_is_excluded_not_a_crash(tmp_path):
    out = _ingest(SLIDES / "tiny-aperio.svs", tmp_path, "skip", slide_id="tiny")
    qc = read_json(out["tiling.json"])
    assert qc["status"] == "excluded"
    assert qc["reason"] == "smaller than one tile: 16 x 16 px at 0.499 um/px, tiles of 128 px"
    with pytest.raises(SlideError, match="smaller than one tile"):
        _ingest(SLIDES / "tiny-aperio.svs", tmp_path / "fail", "fail", slide_id="tiny")


@pytest.mark.parametrize(
    ("name", "words"), [("bad/not-a-tiff.svs", "not"), ("boxes-generic.tiff", "microns per pixel")]
)
def test_an_unusable_file_is_excluded_with_its_reason_and_checksum(tmp_path, name, words):
    out = _ingest(SLIDES / name, tmp_path, "skip", slide_id="bad")
    info = read_json(out["info.json"])
    assert info["status"] == "excluded" and words in info["reason"]
    assert len(info["sha256"]) == 64  # the provenance still records which file it was
    assert read_json(out["tiling.json"])["reason"] == info["reason"]
    assert TileStore(out["glass.zarr"]).status == "excluded"
    with pytest.raises(SlideError):
        _ingest(SLIDES / name, tmp_path / "fail", "fail", slide_id="bad")


def _fluorescence(rgb):
    """A fluorescence-like image of real tissue: nuclei (haematoxylin) bright on a black background."""
    from skimage.color import rgb2hed

    haematoxylin = rgb2hed(rgb)[..., 0]
    signal = np.clip((haematoxylin - np.percentile(haematoxylin, 5)) / np.ptp(haematoxylin), 0, 1)
    glow = (np.sqrt(signal) * 255).astype(np.uint8)
    return np.stack([glow // 6, glow // 3, glow], axis=-1)  # DAPI blue


def test_a_dark_background_is_detected_and_its_tissue_is_what_is_bright():
    from slidesnake.tissue import background_of

    overview = SlideReader(read_slide_info(CMU, "CMU-1")).read_overview(4.0)
    bright_mask = tissue_mask(overview, TISSUE)
    framed = np.zeros((overview.shape[0] + 40, overview.shape[1] + 40, 3), np.uint8)  # black glass around
    framed[20:-20, 20:-20] = _fluorescence(overview)
    assert background_of(overview) == "bright" and background_of(framed) == "dark"
    wrong = tissue_mask(framed, TISSUE, "bright")  # the brightfield rule on a dark slide
    dark = tissue_mask(framed, TISSUE, "dark")
    assert dark[:20].sum() == 0 and dark[:, :20].sum() == 0  # black corners are not tissue
    inner = dark[20:-20, 20:-20]
    agree = (inner & bright_mask).sum() / max(1, (inner | bright_mask).sum())
    assert agree > 0.6, agree  # about the same tissue as the H&E mask finds
    assert wrong.mean() > 2 * dark.mean()  # the brightfield rule takes most of the black glass for tissue


def test_tile_hashes_find_the_same_tiles_in_a_copy_of_a_slide(cmu_store, tmp_path):
    from slidesnake.splits import slides_sharing_tiles

    info, plan, _, kept, index, _ = cmu_store
    copy = write_store(dataclasses.replace(info, slide_id="CMU-1-copy"), plan, kept, tmp_path / "copy.zarr")
    assert index["content_hash"].is_unique
    assert copy["content_hash"].tolist() == index["content_hash"].tolist()
    assert TileStore(tmp_path / "copy.zarr").index["content_hash"].tolist() == index["content_hash"].tolist()
    hashes = [
        pd.DataFrame({"item": "CMU-1", "hash": index["content_hash"]}),
        pd.DataFrame({"item": "CMU-1-copy", "hash": copy["content_hash"].iloc[:3]}),
        pd.DataFrame({"item": "other", "hash": [12345]}),
    ]
    assert slides_sharing_tiles(hashes) == [["CMU-1", "CMU-1-copy"]]


@pytest.fixture(scope="module")
def demo_slide(tmp_path_factory):
    """A small real-looking demo slide (Aperio SVS, JPEG tiles, two levels) and its annotations."""
    folder = tmp_path_factory.mktemp("demo_slide")
    write_demo_slide(folder / "A01.svs", folder / "A01.geojson", "A01", "site_a", small=True)
    return folder / "A01.svs"


def test_a_slide_corrupt_part_way_is_tiled_without_its_unreadable_tiles_and_flagged(demo_slide, tmp_path):
    intact = _ingest(demo_slide, tmp_path / "intact", "skip", slide_id="A01")
    damaged = corrupt_tiles(demo_slide, tmp_path / "A01-damaged.svs", level=0, first=0.5)
    assert damaged > 0
    out = _ingest(tmp_path / "A01-damaged.svs", tmp_path / "damaged", "skip", slide_id="A01")
    qc, whole = read_json(out["tiling.json"]), read_json(intact["tiling.json"])
    assert qc["status"] == "ok" and qc["tiles_kept"] == whole["tiles_kept"]
    assert 0 < qc["tiles_unreadable"] < qc["tiles_kept"]
    assert qc["tiles_written"] == qc["tiles_kept"] - qc["tiles_unreadable"]
    assert qc["unreadable_first"].startswith("tile row ") and "cannot decode" in qc["unreadable_first"]
    store, reference = TileStore(out["glass.zarr"]), TileStore(intact["glass.zarr"])
    assert store.attrs["unreadable_tiles"] == qc["tiles_unreadable"]
    kept = store.index.merge(reference.index, on=["row", "col"], suffixes=("", "_intact"))
    assert len(kept) == len(store.index)  # every stored tile is one the intact slide has ...
    assert (kept["content_hash"] == kept["content_hash_intact"]).all()  # ... with the same pixels
    for y, x in store.index[["y", "x"]].itertuples(index=False):
        np.testing.assert_array_equal(store.read_tile(y, x), reference.read_tile(y, x))
    audit(slide_dirs=[out["slide_dir"]], out_tsv=str(tmp_path / "slides.tsv"), qc=defaults("qc"))
    row = AUDIT_TABLE.read(tmp_path / "slides.tsv").iloc[0]
    assert row["status"] == "ok" and row["tiles_unreadable"] == qc["tiles_unreadable"]
    assert f"{qc['tiles_unreadable']} of {qc['tiles_kept']} tissue tiles unreadable" in row["flags"]


def test_a_slide_unreadable_after_its_first_reads_is_excluded_not_a_failed_job(demo_slide, tmp_path):
    corrupt_tiles(demo_slide, tmp_path / "A01-overview.svs", level=1, first=0.5)  # the mask's level
    out = _ingest(tmp_path / "A01-overview.svs", tmp_path / "skip", "skip", slide_id="A01")
    info, qc = read_json(out["info.json"]), read_json(out["tiling.json"])
    assert info["status"] == qc["status"] == "excluded"
    assert "cannot read level 1" in qc["reason"] and info["vendor"] == "aperio"
    assert TileStore(out["glass.zarr"]).status == "excluded"
    with pytest.raises(SlideError, match="cannot read level 1"):
        _ingest(tmp_path / "A01-overview.svs", tmp_path / "fail", "fail", slide_id="A01")
    assert not (tmp_path / "fail" / "glass.zarr").exists()


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_a_truncated_copy_is_excluded_with_its_reason(demo_slide, tmp_path, keep):
    truncate(demo_slide, tmp_path / "A01-cut.svs", keep=keep)
    out = _ingest(tmp_path / "A01-cut.svs", tmp_path, "skip", slide_id="A01")
    qc = read_json(out["tiling.json"])
    assert qc["status"] == "excluded" and qc["reason"]
    assert TileStore(out["glass.zarr"]).index.empty
