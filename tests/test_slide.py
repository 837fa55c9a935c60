import numpy as np
import openslide
import pytest

from conftest import CMU, SLIDES
from slidesnake.slide import SlideError, SlideReader, choose_level, read_slide_info


def test_cmu_metadata_and_resolution_decision():
    info = read_slide_info(CMU, "CMU-1", target_mpp=0.5, tolerance=0.05)
    assert info.vendor == "aperio"
    assert (info.width, info.height) == (2220, 2967)
    assert info.mpp_x == pytest.approx(0.499)
    assert info.mpp_source == "slide"
    assert info.objective_power == 20
    assert {"label", "macro", "thumbnail"} <= set(info.associated_images)
    # 0.499 is within 5 % of 0.5: level 0 is used as it is, pixel for pixel
    assert (info.level, info.scale, info.level0_per_target) == (0, 1.0, 1.0)
    assert info.tile_mpp == pytest.approx(0.499)
    assert (info.target_width, info.target_height) == (2220, 2967)
    assert len(info.sha256) == 64


def test_cmu_coarser_target_is_resampled():
    info = read_slide_info(CMU, "CMU-1", target_mpp=1.0, tolerance=0.05)
    assert info.level == 0
    assert info.scale == pytest.approx(1.0 / 0.499)
    assert info.tile_mpp == pytest.approx(1.0)
    assert info.target_width == int(2220 * 0.499)


def test_reader_matches_openslide_pixel_for_pixel():
    info = read_slide_info(CMU, "CMU-1")
    reader = SlideReader(info)
    tile = reader.read_target(1000, 700, 64, 48)
    reference = np.asarray(openslide.OpenSlide(str(CMU)).read_region((700, 1000), 0, (48, 64)))[..., :3]
    assert tile.shape == (64, 48, 3)
    np.testing.assert_array_equal(tile, reference)


def test_tiny_aperio_reads():
    info = read_slide_info(SLIDES / "tiny-aperio.svs", "tiny")
    assert (info.width, info.height) == (16, 16)
    assert info.mpp_x == pytest.approx(0.499)


def test_generic_tiff_without_mpp_is_an_error_naming_slide_and_file():
    path = SLIDES / "boxes-generic.tiff"
    with pytest.raises(SlideError, match=r"slide 'boxes'.*boxes-generic\.tiff.*mpp"):
        read_slide_info(path, "boxes")


def test_generic_tiff_works_with_an_override():
    info = read_slide_info(SLIDES / "boxes-generic.tiff", "boxes", target_mpp=1.0, config_mpp=0.25)
    assert info.mpp_source == "config"
    assert info.vendor == "generic-tiff"
    assert len(info.level_dimensions) == 4
    # level 2 (downsample 4) is exactly 1.0 um/px: used as it is
    assert (info.level, info.scale) == (2, 1.0)
    info = read_slide_info(SLIDES / "boxes-generic.tiff", "boxes", sheet_mpp=0.5, config_mpp=0.25)
    assert info.mpp_source == "sheet"


@pytest.mark.parametrize(
    ("name", "problem"),
    [("bad/not-a-tiff.svs", "not a slide format"), ("bad/unreadable-tiles.svs", "cannot")],
)
def test_bad_slides_fail_with_slide_and_file(name, problem):
    with pytest.raises(SlideError) as caught:
        read_slide_info(SLIDES / name, "broken")
    message = str(caught.value)
    assert "slide 'broken'" in message
    assert name.split("/")[-1] in message
    assert problem in message


def test_missing_file_names_the_sheet_column(tmp_path):
    with pytest.raises(SlideError, match="file not found.*'path'"):
        read_slide_info(tmp_path / "nope.svs", "gone")


@pytest.mark.parametrize(
    ("mpp", "downsamples", "target", "expected"),
    [
        (0.25, [1, 4, 16], 0.5, (0, 0.25, 2.0)),  # 40x scan: read level 0, halve
        (0.25, [1, 2, 4], 0.5, (1, 0.5, 1.0)),  # a 2x level exists: use it as it is
        (0.5, [1, 4], 0.5, (0, 0.5, 1.0)),
        (0.5, [1, 4], 2.0, (1, 2.0, 1.0)),
        (1.0, [1, 4], 0.5, (0, 1.0, 1.0 / 2.0)),  # coarser than the target: upsample level 0
        (0.2527, [1, 4, 16], 1.0, (1, 1.0108, 1.0)),  # within tolerance: no resampling
    ],
)
def test_choose_level(mpp, downsamples, target, expected):
    level, level_mpp, scale = choose_level(mpp, downsamples, target, 0.05)
    assert level == expected[0]
    assert level_mpp == pytest.approx(expected[1])
    assert scale == pytest.approx(expected[2])
