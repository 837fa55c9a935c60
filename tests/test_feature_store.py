"""Feature stores on a real slide's tiles, and their TRIDENT and STAMP h5 files (checked with plain h5py).

The "encoder" is a deterministic stand-in: each tile's per-channel means and standard deviations
(6 features), so nothing here depends on the encoders module or on model weights.
"""

import json
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
import zarr
from packaging.version import Version

from conftest import CMU, ROOT, defaults
from slidesnake.features import cli, store
from slidesnake.features.cli import main
from slidesnake.features.from_h5 import import_stamp_h5, import_trident_h5
from slidesnake.features.interop import (
    export_stamp_h5,
    export_trident_h5,
    read_stamp_h5,
    read_trident_h5,
)
from slidesnake.features.store import FeatureStore, store_attributes, write_feature_store
from slidesnake.interrupts import Interrupted, raise_on_termination
from slidesnake.settings import ResolutionPolicy, TissueSettings
from slidesnake.store import TileStore
from slidesnake.store.codecs import make_codec
from slidesnake.store.writer import write_tile_store
from slidesnake.tissue import tile_grid, tissue_mask
from slidesnake.wsi import plan_tiling
from slidesnake.wsi.probe import read_slide_info
from slidesnake.wsi.reader import SlideReader

TISSUE = TissueSettings.from_config(defaults("tissue"))
ENCODER = "channel-stats"
INDEX = ["row", "col", "y", "x", "x0", "y0"]


def channel_stats(tiles: np.ndarray) -> np.ndarray:
    """Per-channel means and standard deviations of uint8 NHWC tiles, in [0, 1]: (tile, 6) float32."""
    pixels = tiles.reshape(len(tiles), -1, 3).astype(np.float32) / 255
    return np.concatenate([pixels.mean(axis=1), pixels.std(axis=1)], axis=1).astype(np.float32)


def _tile_store(info, path, tiles):
    plan = plan_tiling(info, ResolutionPolicy(target_mpp=0.5, tolerance=0.05, mpp_override=None), 224)
    write_tile_store(
        info=info,
        plan=plan,
        tiles=tiles,
        path=path,
        codec=make_codec("zstd", jpeg_quality=90),
        threads=2,
        jpeg_dct_scaling=True,
    )
    return TileStore(path)


@pytest.fixture(scope="module")
def cmu(tmp_path_factory):
    """The real slide's tile store, its tiles' features and their feature store."""
    folder = tmp_path_factory.mktemp("features")
    info = read_slide_info(CMU, "CMU-1")
    plan = plan_tiling(info, ResolutionPolicy(target_mpp=0.5, tolerance=0.05, mpp_override=None), 224)
    grid = tile_grid(plan, tissue_mask(SlideReader(info).read_overview(4.0), TISSUE), 4.0)
    tiles = _tile_store(info, folder / "CMU-1.zarr", grid[grid["tissue_fraction"] >= 0.5])
    features = channel_stats(tiles.read_tiles(tiles.index))
    path = folder / f"CMU-1.{ENCODER}.zarr"
    attributes = store_attributes(tiles, encoder=ENCODER, level0_width=info.width, level0_height=info.height)
    write_feature_store(path, features=features, index=tiles.index, attributes=attributes)
    return info, tiles, features, path


def test_feature_store_reads_back_what_was_written(cmu):
    info, tiles, features, path = cmu
    assert 10 < len(features) < 200 and features.shape[1] == 6
    fs = FeatureStore(path)
    assert fs.features.dtype == np.float32 and fs.features.shape == features.shape
    np.testing.assert_allclose(fs.features, features, rtol=1e-3, atol=1e-4)  # float16
    pd.testing.assert_frame_equal(fs.index[INDEX], tiles.index[INDEX])
    pd.testing.assert_frame_equal(  # the tile store's other columns come along
        fs.index[["tissue_fraction", "sharpness", "content_hash"]],
        tiles.index[["tissue_fraction", "sharpness", "content_hash"]],
        check_dtype=False,
    )
    assert fs.index["content_hash"].dtype == np.int64
    assert (fs.slide_id, fs.encoder, fs.count, fs.dim, len(fs)) == (
        "CMU-1",
        ENCODER,
        len(features),
        6,
        len(features),
    )
    np.testing.assert_array_equal(fs.coords_level0, tiles.index[["x0", "y0"]].to_numpy())
    assert fs.tile_size == 224 and fs.tile_size_level0 == pytest.approx(224 * tiles.plan.level0_per_target)
    assert fs.level0_mpp == pytest.approx(info.mpp_x)
    assert fs.tile_mpp == pytest.approx(tiles.plan.tile_mpp)
    assert not list(path.parent.glob(".*tmp*"))


def test_feature_store_layout(cmu):
    _, tiles, features, path = cmu
    group = zarr.open_group(path, mode="r")
    array = group["features"]
    assert array.metadata.zarr_format == 3
    assert array.dtype == np.float16 and array.shape == features.shape
    assert array.chunks == (len(features), 6)  # one chunk: fewer than 4096 tiles
    assert array.metadata.dimension_names == ("tile", "feature")
    index = group["tiles"]
    assert index.attrs["int64"] == [*INDEX, "content_hash"]
    assert index.attrs["float64"] == ["tissue_fraction", "sharpness"]
    assert "text" not in index.attrs and "text" not in index
    assert index["int64"].dtype == np.int64 and index["int64"].shape == (len(features), 7)
    attrs = group.attrs["slidesnake"]
    assert attrs["coordinates"] == "x0, y0: level-0 pixels of each tile's top-left corner"
    assert (attrs["count"], attrs["dim"], attrs["format_version"]) == (len(features), 6, 1)
    assert attrs["tile_size_level0"] == pytest.approx(224 * tiles.plan.level0_per_target)
    assert attrs["plan"] == tiles.plan.to_dict() and attrs["tile_store"] == str(tiles.path)
    assert (attrs["slide_id"], attrs["encoder"], attrs["status"]) == ("CMU-1", ENCODER, "ok")


def test_large_slides_are_written_a_chunk_at_a_time_and_text_columns_stay_text(cmu, tmp_path, monkeypatch):
    _, tiles, features, _ = cmu
    monkeypatch.setattr(store, "CHUNK_TILES", 16)
    index = tiles.index[INDEX].assign(
        tile_id=[f"CMU-1_{r}_{c}" for r, c in zip(tiles.index["row"], tiles.index["col"], strict=True)]
    )
    attributes = store_attributes(tiles, encoder=ENCODER)
    write_feature_store(tmp_path / "f.zarr", features=features, index=index, attributes=attributes)
    fs = FeatureStore(tmp_path / "f.zarr")
    assert fs.array.chunks == (16, 6) and fs.array.nchunks == -(-len(features) // 16)
    np.testing.assert_allclose(fs.features, features, rtol=1e-3, atol=1e-4)
    assert fs.index["tile_id"].tolist() == index["tile_id"].tolist()
    assert pd.api.types.is_string_dtype(fs.index["tile_id"])


class FailingFeatures:
    """A (tile, 6) array that fails (or is sent SIGTERM) when its second chunk is read."""

    def __init__(self, features, action):
        self.features, self.action, self.shape = features, action, features.shape

    def __getitem__(self, key):
        if key.start:
            self.action()
        return self.features[key]


def _broken():
    raise OSError("disk gone")


def test_a_failed_write_leaves_no_store_and_keeps_the_old_one(cmu, tmp_path, monkeypatch):
    _, tiles, features, _ = cmu
    monkeypatch.setattr(store, "CHUNK_TILES", 16)
    path = tmp_path / "f.zarr"
    attributes = store_attributes(tiles, encoder=ENCODER)
    with pytest.raises(OSError, match="disk gone"):
        write_feature_store(
            path, features=FailingFeatures(features, _broken), index=tiles.index, attributes=attributes
        )
    assert list(tmp_path.iterdir()) == []  # neither the store nor its temporary folder
    write_feature_store(path, features=features, index=tiles.index, attributes=attributes)
    with pytest.raises(OSError, match="disk gone"):
        write_feature_store(
            path, features=FailingFeatures(features * 2, _broken), index=tiles.index, attributes=attributes
        )
    assert list(tmp_path.iterdir()) == [path]
    np.testing.assert_allclose(FeatureStore(path).features, features, rtol=1e-3, atol=1e-4)


def test_sigterm_during_a_write_leaves_no_store(cmu, tmp_path, monkeypatch):
    _, tiles, features, _ = cmu
    monkeypatch.setattr(store, "CHUNK_TILES", 16)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    raise_on_termination()
    try:
        term = FailingFeatures(features, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(Interrupted):
            write_feature_store(
                tmp_path / "f.zarr",
                features=term,
                index=tiles.index,
                attributes=store_attributes(tiles, encoder=ENCODER),
            )
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    assert list(tmp_path.iterdir()) == []


def test_bad_features_are_refused(cmu, tmp_path):
    _, tiles, features, _ = cmu
    attributes = store_attributes(tiles, encoder=ENCODER)
    bad = features.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="tile 3 are NaN"):
        write_feature_store(tmp_path / "f.zarr", features=bad, index=tiles.index, attributes=attributes)
    with pytest.raises(ValueError, match="float16's range"):
        write_feature_store(
            tmp_path / "f.zarr", features=features * 1e6, index=tiles.index, attributes=attributes
        )
    with pytest.raises(ValueError, match="feature rows for"):
        write_feature_store(
            tmp_path / "f.zarr", features=features[1:], index=tiles.index, attributes=attributes
        )
    with pytest.raises(ValueError, match="lack encoder"):
        write_feature_store(
            tmp_path / "f.zarr",
            features=features,
            index=tiles.index,
            attributes={"slide_id": "x", "tile_size": 224, "tile_mpp": 0.5, "level0_per_target": 1.0},
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="not a feature store"):
        FeatureStore(tiles.path)


def test_trident_export_has_the_datasets_and_attributes_trident_writes(cmu, tmp_path):
    info, tiles, features, path = cmu
    out = export_trident_h5(path, tmp_path / "CMU-1.h5")
    with h5py.File(out, "r") as f:
        assert set(f) == {"features", "coords"}
        feats, coords = f["features"], f["coords"]
        assert feats.dtype == np.float32 and feats.shape == features.shape
        np.testing.assert_allclose(feats[:], features, rtol=1e-3, atol=1e-4)
        assert coords.dtype == np.int64 and coords.shape == (len(features), 2)
        np.testing.assert_array_equal(coords[:], tiles.index[["x0", "y0"]].to_numpy())  # x, y at level 0
        assert feats.maxshape == (None, 6) and coords.maxshape == (None, 2)  # save_h5 appends along tiles
        assert dict(feats.attrs) == {"name": "CMU-1", "savetodir": str(tmp_path), "encoder": ENCODER}
        attrs = dict(coords.attrs)  # TRIDENT's read_coords
    assert set(attrs) == {
        "patch_size",
        "patch_size_level0",
        "level0_magnification",
        "target_magnification",
        "overlap",
        "name",
        "savetodir",
        "level0_width",
        "level0_height",
    }
    # CMU-1 is 0.499 um/px: TRIDENT calls it 20x; 224 px tiles at 0.5 um/px are level-0 tiles
    assert (attrs["patch_size"], attrs["patch_size_level0"]) == (224, 224)
    assert (attrs["level0_magnification"], attrs["target_magnification"], attrs["overlap"]) == (20, 20, 0)
    assert (attrs["level0_width"], attrs["level0_height"]) == (info.width, info.height)
    assert (attrs["name"], attrs["savetodir"]) == ("CMU-1", str(tmp_path))
    # what TRIDENT's patcher makes of them: level-0 tile side patch_size * src_mag / dst_mag
    level0_side = attrs["patch_size"] * attrs["level0_magnification"] / attrs["target_magnification"]
    assert level0_side == pytest.approx(FeatureStore(path).tile_size_level0, rel=0.01)
    assert not list(tmp_path.glob(".*tmp*"))


def test_stamp_export_has_the_datasets_and_attributes_stamp_reads(cmu, tmp_path):
    info, tiles, features, path = cmu
    out = export_stamp_h5(path, tmp_path / "CMU-1.h5")
    with h5py.File(out, "r") as h5:
        assert set(h5) == {"feats", "coords"}
        assert h5["feats"].dtype == np.float16 and h5["feats"].shape == features.shape  # STAMP: .half()
        np.testing.assert_array_equal(h5["feats"][:], zarr.open_array(path / "features", mode="r")[:])
        coords = h5["coords"][:]
        attrs = dict(h5.attrs)
    assert coords.dtype == np.float32 and coords.shape == (len(features), 2)
    np.testing.assert_allclose(coords, tiles.index[["x0", "y0"]].to_numpy() * info.mpp_x, rtol=1e-6)  # um
    assert set(attrs) == {
        "stamp_version",
        "extractor",
        "unit",
        "tile_size_um",
        "tile_size_px",
        "code_hash",
        "feat_type",
        "slidesnake",
    }
    assert (attrs["extractor"], attrs["unit"], attrs["feat_type"], attrs["tile_size_px"]) == (
        ENCODER,
        "um",
        "tile",
        224,
    )
    assert attrs["tile_size_um"] == pytest.approx(224 * tiles.plan.tile_mpp)
    assert len(attrs["code_hash"]) == 8 and int(attrs["code_hash"], 16) >= 0
    # STAMP's get_coords: coordinates in um since tile_size_um is there; refuses newer stamp_versions
    assert Version(attrs["stamp_version"]) <= Version("2.5.0")
    # STAMP's heatmaps: level-0 corners and tile side from um and the slide's MPP
    np.testing.assert_array_equal(
        np.round(coords / info.mpp_x).astype(int), tiles.index[["x0", "y0"]].to_numpy()
    )
    assert round(attrs["tile_size_um"] / info.mpp_x) == round(FeatureStore(path).tile_size_level0)
    assert json.loads(attrs["slidesnake"])["slide_id"] == "CMU-1"


@pytest.mark.parametrize("fmt", ["trident", "stamp"])
def test_export_import_round_trip(cmu, tmp_path, fmt):
    info, tiles, features, path = cmu
    h5 = {"trident": export_trident_h5, "stamp": export_stamp_h5}[fmt](path, tmp_path / "CMU-1.h5")
    imported = {"trident": import_trident_h5, "stamp": import_stamp_h5}[fmt](
        h5, tmp_path / "back.zarr", mpp=info.mpp_x
    )
    original = FeatureStore(path)
    np.testing.assert_array_equal(imported.features, original.features)  # float16 both ways: exact
    pd.testing.assert_frame_equal(imported.index[INDEX], original.index[INDEX])
    for key in ("slide_id", "encoder", "tile_size", "plan", "tile_store"):
        assert imported.attrs[key] == original.attrs[key]
    for key in ("tile_mpp", "level0_mpp", "level0_per_target", "tile_size_level0"):
        assert imported.attrs[key] == pytest.approx(original.attrs[key])
    assert imported.attrs["imported_from"]["format"] == fmt


def _as_trident_writes_it(features, coords, tmp_path):
    """A file as TRIDENT's save_h5 writes it: chunks of one tile, None as 'None', no slidesnake attribute."""
    path = tmp_path / "S1.h5"
    with h5py.File(path, "w") as f:
        for key, val, attrs in (
            ("features", features, {"name": "S1", "savetodir": "/job/features_uni_v1", "encoder": "uni_v1"}),
            (
                "coords",
                coords,
                {
                    "patch_size": 256,
                    "patch_size_level0": 512,
                    "level0_magnification": 40,
                    "target_magnification": 20,
                    "overlap": 0,
                    "name": "S1",
                    "savetodir": "/job",
                    "level0_width": 40000,
                    "level0_height": 30000,
                },
            ),
        ):
            dset = f.create_dataset(
                key,
                shape=val.shape,
                maxshape=(None, *val.shape[1:]),
                chunks=(1, *val.shape[1:]),
                dtype=val.dtype,
            )
            dset[:] = val
            for attr_key, attr_val in attrs.items():
                dset.attrs[attr_key] = attr_val
    return path


def test_import_of_files_the_tools_wrote(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(5, 1024)).astype(np.float32)
    coords = np.array([[0, 0], [512, 0], [1024, 512], [3072, 2048], [512, 4096]], np.int64)
    trident = _as_trident_writes_it(features, coords, tmp_path)
    feats, xy, attrs = read_trident_h5(trident)
    np.testing.assert_array_equal(feats, features)
    np.testing.assert_array_equal(xy, coords)
    assert attrs["coords"]["patch_size_level0"] == 512 and attrs["features"]["encoder"] == "uni_v1"
    fs = import_trident_h5(trident, tmp_path / "t.zarr", mpp=0.25)
    assert (fs.slide_id, fs.encoder, fs.tile_size, fs.level0_per_target) == ("S1", "uni_v1", 256, 2.0)
    assert fs.tile_mpp == pytest.approx(0.5) and fs.attrs["level0_width"] == 40000
    assert fs.index[["col", "row"]].to_numpy().tolist() == [[0, 0], [1, 0], [2, 1], [6, 4], [1, 8]]
    np.testing.assert_array_equal(fs.coords_level0, coords)
    np.testing.assert_allclose(fs.features, features, rtol=1e-3, atol=1e-3)
    assert import_trident_h5(trident, tmp_path / "m.zarr").level0_mpp == pytest.approx(0.25)  # 10 / 40x

    stamp = tmp_path / "S2.h5"
    with h5py.File(stamp, "w") as h5:  # as STAMP's extract_ writes it
        h5["coords"] = (coords * 0.2527).astype(np.float32)
        h5["feats"] = features.astype(np.float16)
        h5.attrs.update(
            {
                "stamp_version": "2.4.0",
                "extractor": "uni2",
                "unit": "um",
                "tile_size_um": 256.0,
                "tile_size_px": 224,
                "code_hash": "0123abcd",
                "feat_type": "tile",
            }
        )
    feats, um, attrs = read_stamp_h5(stamp)
    assert feats.dtype == np.float32 and um.shape == (5, 2) and attrs["extractor"] == "uni2"
    with pytest.raises(ValueError, match="--mpp"):
        import_stamp_h5(stamp, tmp_path / "s.zarr")
    fs = import_stamp_h5(stamp, tmp_path / "s.zarr", mpp=0.2527)
    np.testing.assert_array_equal(fs.coords_level0, coords)
    assert (fs.slide_id, fs.encoder, fs.tile_size) == ("S2", "uni2", 224)
    assert fs.tile_mpp == pytest.approx(256 / 224) and fs.tile_size_level0 == pytest.approx(256 / 0.2527)
    with h5py.File(stamp, "a") as h5:
        h5.attrs["feat_type"] = "slide"
    with pytest.raises(ValueError, match="slide-level features"):
        read_stamp_h5(stamp)


@pytest.mark.parametrize("dim", [6, 0])
def test_an_empty_slide_round_trips(tmp_path, dim):
    info = read_slide_info(CMU, "CMU-1")
    empty = pd.DataFrame(columns=["row", "col", "y", "x", "x0", "y0", "tissue_fraction"])
    tiles = _tile_store(info, tmp_path / "tiles.zarr", empty)
    path = tmp_path / "features.zarr"
    write_feature_store(
        path,
        features=np.empty((0, dim), np.float32),
        index=tiles.index,
        attributes=store_attributes(tiles, encoder=ENCODER),
    )
    fs = FeatureStore(path)
    assert fs.features.shape == (0, dim) and fs.count == 0 and fs.dim == dim
    assert fs.index.empty and list(fs.index.columns[:6]) == INDEX
    with h5py.File(export_trident_h5(fs, tmp_path / "t.h5"), "r") as f:
        assert f["features"].shape == ((0, dim) if dim else (0,))  # as TRIDENT saves a slide without patches
        assert f["coords"].shape == (0, 2) and f["coords"].dtype == np.int64
    with h5py.File(export_stamp_h5(fs, tmp_path / "s.h5"), "r") as f:
        assert f["feats"].shape == (0, dim) and f["coords"].shape == (0, 2)
    for fmt, h5 in (("trident", tmp_path / "t.h5"), ("stamp", tmp_path / "s.h5")):
        back = cli.IMPORTS[fmt](h5, tmp_path / f"{fmt}.zarr", mpp=info.mpp_x)
        assert back.features.shape == (0, dim) and back.index.empty and back.slide_id == "CMU-1"


def test_command_line(cmu, tmp_path, capsys):
    info, _, _, path = cmu
    assert main(["export", "--format", "stamp", str(path), str(tmp_path / "s.h5")]) == 0
    assert (
        main(
            [
                "import",
                "--format",
                "stamp",
                str(tmp_path / "s.h5"),
                "--mpp",
                str(info.mpp_x),
                "--slide-id",
                "X",
                str(tmp_path / "x.zarr"),
            ]
        )
        == 0
    )
    assert FeatureStore(tmp_path / "x.zarr").slide_id == "X"
    assert (
        main(["import", "--format", "trident", str(tmp_path / "missing.h5"), str(tmp_path / "y.zarr")]) == 1
    )
    assert "missing.h5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--format", "clam", str(path), str(tmp_path / "c.h5")])
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "slidesnake.features.cli",
            "export",
            "--format",
            "trident",
            str(path),
            str(tmp_path / "t.h5"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "scripts")},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f["coords"].attrs["name"] == "CMU-1"
