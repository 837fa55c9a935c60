import dataclasses
import logging
import tracemalloc

import numpy as np
import openslide
import pytest
import tifffile
from PIL import Image

from conftest import CMU, SLIDES
from slidesnake.demo import write_demo_slide
from slidesnake.demo.svs import write_slide
from slidesnake.errors import SlideError
from slidesnake.qc import slide_flags
from slidesnake.settings import ResolutionPolicy
from slidesnake.wsi import SlideInfo, choose_level, plan_tiling
from slidesnake.wsi.probe import read_slide_info
from slidesnake.wsi.reader import READERS, SlideReader
from slidesnake.wsi.resample import area_resample, reduce_power_of_two


def plan(info, target_mpp=0.5, tile_size=128):
    return plan_tiling(
        info, ResolutionPolicy(target_mpp=target_mpp, tolerance=0.05, mpp_override=None), tile_size
    )


def test_cmu_metadata_and_resolution_decision():
    info = read_slide_info(CMU, "CMU-1")
    assert info.vendor == "aperio"
    assert (info.width, info.height) == (2220, 2967)
    assert info.mpp_x == pytest.approx(0.499)
    assert info.mpp_source == "slide"
    assert info.objective_power == 20
    assert {"label", "macro", "thumbnail"} <= set(info.associated_images)
    assert len(info.sha256) == 64
    # 0.499 is within 5 % of 0.5: level 0 is used as it is, pixel for pixel
    decision = plan(info)
    assert (decision.level, decision.scale, decision.level0_per_target) == (0, 1.0, 1.0)
    assert decision.tile_mpp == pytest.approx(0.499)
    assert (decision.target_width, decision.target_height) == (2220, 2967)
    assert decision.grid_shape == (2967 // 128, 2220 // 128)


def test_cmu_coarser_target_is_resampled():
    decision = plan(read_slide_info(CMU, "CMU-1"), target_mpp=1.0)
    assert decision.level == 0
    assert decision.scale == pytest.approx(1.0 / 0.499)
    assert decision.tile_mpp == pytest.approx(1.0)
    assert decision.target_width == int(2220 * 0.499)


def test_reader_matches_openslide_pixel_for_pixel():
    info = read_slide_info(CMU, "CMU-1")
    reader = SlideReader(info)
    tile = reader.read_target(plan(info), 1000, 700, 64, 48)
    reference = np.asarray(openslide.OpenSlide(str(CMU)).read_region((700, 1000), 0, (48, 64)))[..., :3]
    assert tile.shape == (64, 48, 3)
    np.testing.assert_array_equal(tile, reference)


@pytest.mark.parametrize("name", ["cmu-jpeg", "demo-svs", "j2k-ycbcr"])
def test_jpeg_dct_scaling_is_within_grey_levels_of_area_averaging(slides, name):
    """Tiles decoded reduced by libjpeg (CMU-1's JPEG is RGB-coded, the demo's YCbCr) are close to the
    block means of the full decode, by pieces as whole; other compressions are always averaged.
    """
    path, kwargs, _ = slides[name]
    info = read_slide_info(path, name, **kwargs)
    reader = SlideReader(info)
    decision = plan(info, target_mpp=2 * info.mpp_x, tile_size=64)
    assert decision.scale == 2.0
    if name == "j2k-ycbcr":
        assert reader.resampling(decision, jpeg_dct_scaling=True) == "area"
        return
    assert reader.resampling(decision, jpeg_dct_scaling=True) == "jpeg-dct"
    assert reader.resampling(decision, jpeg_dct_scaling=False) == "area"
    height, width = decision.target_height // 64 * 64, decision.target_width // 64 * 64
    averaged = reader.read_target(decision, 0, 0, height, width).astype(int)
    scaled = reader.read_target(decision, 0, 0, height, width, jpeg_dct_scaling=True)
    difference = np.abs(scaled.astype(int) - averaged)  # a wrong colour space would be tens of levels
    assert 0 < difference.mean() < 0.5 and np.percentile(difference, 99) <= 3, name
    pieces = np.vstack(
        [
            np.hstack(
                [
                    reader.read_target(decision, y, x, 64, 64, {}, jpeg_dct_scaling=True)
                    for x in range(0, width, 64)
                ]
            )
            for y in range(0, height, 64)
        ]
    )
    np.testing.assert_array_equal(pieces, scaled)
    edge = reader.read_target(decision, height, width, 64, 64, jpeg_dct_scaling=True)  # past the edge
    np.testing.assert_array_equal(edge, reader.read_target(decision, height, width, 64, 64))


def test_tiny_aperio_reads():
    info = read_slide_info(SLIDES / "tiny-aperio.svs", "tiny")
    assert (info.width, info.height) == (16, 16)
    assert info.mpp_x == pytest.approx(0.499)


def test_a_sheet_mpp_far_from_the_files_is_warned_about_and_flagged(caplog):
    expected = "sheet MPP 0.998 differs from the file's 0.499 um/px by more than 10%"
    with caplog.at_level(logging.WARNING, logger="slidesnake.wsi.resolution"):
        info = read_slide_info(CMU, "CMU-1", sheet_mpp=0.998)  # twice the file's 0.499
    assert (info.mpp_x, info.mpp_source, info.file_mpp) == (0.998, "sheet", pytest.approx(0.499))
    assert [r.getMessage() for r in caplog.records] == [
        f"CMU-1: {expected}; the sheet's value is used (sheet column 'mpp')"
    ]
    row = {**info.to_dict(), "tissue_share": 0.4}
    assert slide_flags(row) == ["MPP from the sheet", expected]
    caplog.clear()
    close = read_slide_info(CMU, "CMU-1", sheet_mpp=0.5)  # within 10 %: the generic flag only
    assert not caplog.records and slide_flags({**close.to_dict(), "tissue_share": 0.4}) == [
        "MPP from the sheet"
    ]
    assert read_slide_info(CMU, "CMU-1").file_mpp == pytest.approx(0.499)


def test_slide_facts_written_before_file_mpp_still_load():
    facts = read_slide_info(CMU, "CMU-1").to_dict()
    del facts["file_mpp"]
    assert SlideInfo.from_dict(facts).file_mpp is None


def test_generic_tiff_without_mpp_is_an_error_naming_slide_and_file():
    path = SLIDES / "boxes-generic.tiff"
    with pytest.raises(SlideError, match=r"slide 'boxes'.*boxes-generic\.tiff.*mpp"):
        read_slide_info(path, "boxes")


def test_generic_tiff_works_with_an_override():
    info = read_slide_info(SLIDES / "boxes-generic.tiff", "boxes", mpp_override=0.25)
    assert info.mpp_source == "config"
    assert info.vendor == "generic-tiff"
    assert len(info.level_dimensions) == 4
    # level 2 (downsample 4) is exactly 1.0 um/px: used as it is
    decision = plan(info, target_mpp=1.0)
    assert (decision.level, decision.scale) == (2, 1.0)
    info = read_slide_info(SLIDES / "boxes-generic.tiff", "boxes", sheet_mpp=0.5, mpp_override=0.25)
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


# ----------------------------------------------------------------------------- the two readers


def write_j2k_svs(path, rgb, compression, tile=128):
    """An Aperio SVS whose tiles are JPEG 2000 codestreams (YCbCr or RGB)."""
    write_slide(
        path, rgb, mpp=0.499, compression=compression, quality=70, tile=tile, pyramid=False, thumbnail=False
    )
    return path


def cmu_crop():
    return tifffile.imread(CMU, key=0)[1000:1300, 600:1000]


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """(slide id, path, read_slide_info keywords, levels to compare) of real and generated slides."""
    folder = tmp_path_factory.mktemp("slides")
    write_demo_slide(folder / "A01.svs", folder / "A01.geojson", "A01", "site_a", small=True)
    return {
        "cmu-jpeg": (CMU, {}, [0]),
        # boxes: levels 2 and 3 have non-integer downsamples, where OpenSlide reads at sub-pixel offsets
        "boxes-deflate": (SLIDES / "boxes-generic.tiff", {"mpp_override": 0.25}, [0, 1]),
        "demo-svs": (folder / "A01.svs", {}, [0, 1]),
        "j2k-ycbcr": (write_j2k_svs(folder / "j2k-33003.svs", cmu_crop(), "jpeg2000-ycbcr"), {}, [0]),
        "j2k-rgb": (write_j2k_svs(folder / "j2k-33005.svs", cmu_crop(), "jpeg2000-rgb"), {}, [0]),
    }


@pytest.mark.parametrize("name", ["cmu-jpeg", "boxes-deflate", "demo-svs", "j2k-ycbcr", "j2k-rgb"])
def test_fast_path_and_openslide_give_the_same_pixels(slides, name):
    path, kwargs, levels = slides[name]
    info = read_slide_info(path, name, **kwargs)
    assert info.reader == "tifffile"
    fast, slow = SlideReader(info, "tifffile"), SlideReader(info, "openslide")
    rng = np.random.default_rng(0)
    for level in levels:
        width, height = info.level_dimensions[level]
        regions = [
            (0, 0, width, height),  # the whole level
            (7, 13, 100, 61),  # not tile-aligned
            (width - 50, height - 40, 120, 90),  # across the right and bottom edges
            (-20, -10, 60, 50),  # across the top-left corner
            (width + 5, 0, 10, 10),  # outside: white
        ]
        regions += [
            (int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(1, 300)), 37)
            for _ in range(10)
        ]
        for x, y, w, h in regions:
            np.testing.assert_array_equal(
                fast.read_level(level, x, y, w, h), slow.read_level(level, x, y, w, h), f"{level=} {x=} {y=}"
            )
    assert (fast.read_level(0, info.width + 5, 0, 10, 10) == 255).all()
    decision = plan(info)
    np.testing.assert_array_equal(
        fast.read_target(decision, 3, 5, 40, 30), slow.read_target(decision, 3, 5, 40, 30)
    )


def test_j2k_tiles_decode_to_the_image(slides):
    path, _, _ = slides["j2k-ycbcr"]
    info = read_slide_info(path, "j2k")
    decoded = SlideReader(info).read_level(0, 0, 0, info.width, info.height).astype(int)
    assert np.abs(decoded - cmu_crop()).mean() < 8  # lossy, but the same picture


def test_a_tiff_layout_outside_the_fast_path_is_read_by_openslide(tmp_path):
    rgba = np.dstack([cmu_crop(), np.full((300, 400), 255, np.uint8)])
    path = tmp_path / "rgba.tiff"
    write_slide(path, rgba, mpp=None, vendor="generic", compression="deflate", tile=64, pyramid=False)
    info = read_slide_info(path, "rgba", mpp_override=0.5)
    assert (info.vendor, info.reader) == ("generic-tiff", "openslide")
    np.testing.assert_array_equal(SlideReader(info).read_target(plan(info), 0, 0, 300, 400), cmu_crop())


def test_bad_slides_fail_with_either_reader():
    info = read_slide_info(CMU, "CMU-1")
    broken = dataclasses.replace(info, path=str(SLIDES / "bad" / "unreadable-tiles.svs"))
    for reader in READERS:
        with pytest.raises(SlideError, match=r"slide 'CMU-1'.*unreadable-tiles\.svs"):
            SlideReader(broken, reader).read_level(0, 0, 0, 16, 16)


def write_single_level_tiff(path, width, height, tile=256):
    """A single-level generic tiled TIFF (JPEG) at 0.25 um/px, written tile by tile: never whole in memory."""
    patch = np.ascontiguousarray(tifffile.imread(CMU, key=0)[:tile, :tile])
    tiles = (
        patch if (x // tile + y // tile) % 3 else np.full_like(patch, 240)
        for y in range(0, height, tile)
        for x in range(0, width, tile)
    )
    write_slide(path, tiles=tiles, shape=(height, width, 3), mpp=0.25, vendor="generic", tile=tile)
    return path


@pytest.mark.parametrize("reader", READERS)
def test_overview_of_a_single_level_slide_is_read_in_bounded_memory(tmp_path_factory, reader):
    path = tmp_path_factory.getbasetemp() / "single-level.tiff"
    if not path.exists():
        write_single_level_tiff(path, 8192, 8192)
    info = read_slide_info(path, "big")
    assert (len(info.level_dimensions), info.mpp_x, info.reader) == (1, 0.25, "tifffile")
    with SlideReader(info, reader) as slide:
        tracemalloc.start()
        overview = slide.read_overview(4.0)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert overview.shape == (512, 512, 3)
    assert peak < 64e6, f"peak {peak / 1e6:.0f} MB"  # the level alone is 201 MB (RGB)
    # the pieces add up to the whole: a band equals the area average of the level's rows
    band = SlideReader(info).read_level(0, 0, 2000, 8192, 1024)  # overview rows 125-188, across pieces
    reference = band.reshape(64, 16, 512, 16, 3).mean(axis=(1, 3), dtype=np.float32)
    assert np.abs(overview[125:189] - reference).max() <= 1.0


def test_area_resample_by_pieces_equals_the_whole():
    image = cmu_crop()
    whole = area_resample(image, (0, 0, 400, 300), 90, 120)
    left = area_resample(image, (0, 0, 400 * 50 / 120, 300), 90, 50)
    right = area_resample(image, (400 * 50 / 120, 0, 400, 300), 90, 70)
    assert np.abs(np.hstack([left, right]).astype(int) - whole).max() <= 1
    halved = area_resample(image, (0, 0, 400, 300), 150, 200)
    np.testing.assert_array_equal(halved, np.floor(image.reshape(150, 2, 200, 2, 3).mean(axis=(1, 3)) + 0.5))


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
def test_power_of_two_reduction_equals_pillow_and_the_rounded_mean(factor):
    image = cmu_crop()[:288, :384]  # real tissue, sides divisible by 16
    extremes = np.zeros((16 * factor, 16 * factor, 3), np.uint8)
    extremes[::2] = 255  # block sums land on .5 before rounding, and the top of 16 bits at 16
    extremes[:factor, :factor] = 255
    for region in (image, extremes):
        reduced = reduce_power_of_two(region, factor)
        np.testing.assert_array_equal(reduced, np.asarray(Image.fromarray(region).reduce(factor)))
        rows, cols = region.shape[0] // factor, region.shape[1] // factor
        mean = region.reshape(rows, factor, cols, factor, 3).mean(axis=(1, 3))
        np.testing.assert_array_equal(reduced, np.floor(mean + 0.5))
    with pytest.raises(ValueError, match="factor 3"):
        reduce_power_of_two(image, 3)
    with pytest.raises(ValueError, match="does not divide"):
        reduce_power_of_two(image[:, :101], factor)


def test_implausible_mpp_is_an_error_unless_overridden(tmp_path):
    path = tmp_path / "odd.tiff"  # 100 um/px: no scanner does that
    write_slide(path, cmu_crop(), mpp=100, vendor="generic", compression="deflate", tile=64, pyramid=False)
    with pytest.raises(SlideError, match=r"slide 'odd'.*odd\.tiff.*mpp-x=100"):
        read_slide_info(path, "odd")
    info = read_slide_info(path, "odd", sheet_mpp=0.5)
    assert (info.mpp_x, info.mpp_source, info.reader) == (0.5, "sheet", "tifffile")


def test_a_slide_out_of_focus_whole_or_in_part_is_flagged_against_the_study():
    from slidesnake.qc import blur_flags

    sharp = {"status": "ok", "blur_score": 15.0, "blur_score_p25": 12.0}
    assert blur_flags(sharp, median_blur=15.0, ratio=0.5) == []
    whole = blur_flags({**sharp, "blur_score": 4.0, "blur_score_p25": 3.0}, median_blur=15.0, ratio=0.5)
    assert len(whole) == 1 and whole[0].startswith(
        "out of focus? blur score 4.0 under 0.5 x the dataset's median 15.0"
    )
    part = blur_flags({**sharp, "blur_score_p25": 5.0}, median_blur=15.0, ratio=0.5)
    assert len(part) == 1 and part[0].startswith(
        "a blurred region? a quarter of its tissue tiles score under 5.0"
    )
    assert blur_flags({**sharp, "status": "excluded", "blur_score": None}, median_blur=15.0, ratio=0.5) == []
