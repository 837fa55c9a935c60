"""Tests for slidesnake.stain on real pixels: the demo's two sites, the Kather tiles and CMU-1."""

from __future__ import annotations

import numpy as np
import openslide
import pytest
from PIL import Image
from skimage.color import rgb2hed

from conftest import CMU, SHARED
from slidesnake.demo import write_demo_slide
from slidesnake.errors import StainError
from slidesnake.stain import StainTarget, fit_target, hed_augment, normalize, optical_density

KATHER = SHARED / "tiles" / "kather2016-texture"
NCT = SHARED / "tiles" / "nct-crc-he-100k"


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, np.ndarray]:
    """A 512 x 512 px tissue region of one demo slide of each site (site_a pink, site_b purple)."""
    folder = tmp_path_factory.mktemp("sites")
    regions = {}
    for dataset, slide_id in (("site_a", "A03"), ("site_b", "B02")):
        svs = folder / f"{slide_id}.svs"
        write_demo_slide(svs, folder / f"{slide_id}.geojson", slide_id, dataset, small=True)
        with openslide.OpenSlide(svs) as slide:
            width, height = slide.dimensions
            corner = ((width - 512) // 2, (height - 512) // 2)
            regions[dataset] = np.asarray(slide.read_region(corner, 0, (512, 512)).convert("RGB"))
    return regions


def _tissue_hed_means(tile: np.ndarray) -> np.ndarray:
    """Mean H and E optical density (scikit-image's HED) over the tissue pixels."""
    hed = rgb2hed(tile).reshape(-1, 3)
    tissue = (optical_density(tile.reshape(-1, 3)) > 0.15).all(axis=1)
    return hed[tissue, :2].mean(axis=0)


def _kather(name: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(path).convert("RGB")) for path in sorted((KATHER / name).iterdir())]


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_normalization_brings_site_b_stain_to_site_a(sites, method):
    reference, other = sites["site_a"], sites["site_b"]
    target = fit_target([reference], method)
    normalized = normalize(other, target)
    want, before, after = (_tissue_hed_means(t) for t in (reference, other, normalized))
    assert np.abs(before - want).max() > 0.01  # the sites really differ
    assert np.abs(after - want).max() < 0.35 * np.abs(before - want).max()
    tissue = lambda t: t[t.mean(axis=2) < 220].mean(axis=0)  # noqa: E731
    assert (
        np.abs(tissue(normalized) - tissue(reference)).max() < np.abs(tissue(other) - tissue(reference)).max()
    )


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_a_tile_normalized_to_its_own_target_barely_changes(sites, method):
    tile = sites["site_a"]
    same = normalize(tile, fit_target([tile], method))
    assert np.abs(same.astype(int) - tile).mean() < 3


@pytest.mark.parametrize("method", ["macenko", "reinhard"])
def test_empty_saturated_and_real_tiles_give_no_nan_and_no_exploded_colours(method):
    target = fit_target(_kather("01_TUMOR"), method)
    white = np.full((64, 64, 3), 250, np.uint8)
    black = np.zeros((64, 64, 3), np.uint8)
    assert (normalize(white, target) == white).all()  # no tissue: unchanged
    dark = normalize(black, target)
    assert dark.dtype == np.uint8 and dark.shape == black.shape
    with openslide.OpenSlide(CMU) as slide:
        cmu = np.asarray(slide.read_region((0, 0), 0, (512, 512)).convert("RGB"))  # mostly background
    tiles = [cmu, *_kather("08_EMPTY"), *_kather("07_ADIPOSE"), *_kather("04_LYMPHO")]
    tiles += [np.asarray(Image.open(path).convert("RGB")) for path in sorted(NCT.glob("*.tif"))]
    for tile in tiles:
        out = normalize(tile, target)
        assert out.dtype == np.uint8 and out.shape == tile.shape
        background = tile.mean(axis=2) > 235
        if background.sum() > 100:  # background stays light, no exploded colours
            assert out[background].mean() > 200
        if method == "reinhard":
            continue  # Reinhard sets a pale (fat) tile's lightness to the target's: darker, by design
        # no exploded colours: H&E stays pink to purple (green never the strongest channel), and no
        # more pixels saturate than before
        green = lambda t: (t[..., 1].astype(int) > t[..., [0, 2]].max(axis=2).astype(int) + 10).mean()  # noqa: E731
        clipped = lambda t: ((t == 0) | (t == 255)).any(axis=2).mean()  # noqa: E731
        assert green(out) < green(tile) + 0.02
        assert clipped(out) < clipped(tile) + 0.02


def test_a_target_survives_its_json_and_a_reference_without_tissue_is_an_error():
    target = fit_target(_kather("02_STROMA"), "macenko")
    assert StainTarget.from_dict(target.to_dict()) == target
    h, e = np.asarray(target.stains)
    assert h[0] > e[0] and e[1] > h[1]  # haematoxylin absorbs red most, eosin green
    with pytest.raises(StainError, match="tissue pixels"):
        fit_target([np.full((64, 64, 3), 255, np.uint8)], "macenko")


def test_hed_augmentation_is_deterministic_per_seed_and_bounded():
    tile = _kather("01_TUMOR")[0]
    first = hed_augment(tile, np.random.default_rng(7), scale=0.05, shift=0.05)
    again = hed_augment(tile, np.random.default_rng(7), scale=0.05, shift=0.05)
    other = hed_augment(tile, np.random.default_rng(8), scale=0.05, shift=0.05)
    assert (first == again).all() and (first != other).any()
    assert first.dtype == np.uint8 and first.shape == tile.shape
    assert np.abs(first.astype(int) - tile).mean() < 40
    assert (hed_augment(tile, np.random.default_rng(7), scale=0, shift=0) == tile).all()


def test_hed_augmentation_leaves_background_white(sites):
    tile = sites["site_a"].copy()
    tile[:, :256] = 243  # slide glass beside the tissue
    changed = hed_augment(tile, np.random.default_rng(3), scale=0.2, shift=0.05).astype(int)
    assert np.abs(changed[:, :200] - 243).max() <= 5  # scaled a little, never tinted
    assert np.abs(changed[:, 300:] - tile[:, 300:]).mean() > 2  # the tissue's stain did move


def test_a_reference_is_an_image_or_a_folder_of_tiles(tmp_path):
    from slidesnake.stain import read_reference

    folder = KATHER / "01_TUMOR"
    tiles = read_reference(folder)
    assert len(tiles) == len(list(folder.iterdir())) and tiles[0].dtype == np.uint8
    assert len(read_reference(sorted(folder.iterdir())[0])) == 1
    assert fit_target(tiles, "macenko").method == "macenko"
    with pytest.raises(StainError, match="no image file"):
        read_reference(tmp_path / "missing.png")
