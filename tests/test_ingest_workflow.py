"""A real Snakemake run of the ingest rule on good and bad slides with ``on_bad_slide: fail``.

--keep-going finishes the good slides; the bad ones fail their own jobs with a message naming slide and file.
"""

import pandas as pd
import pytest
from workflow_runs import make_workdir, snakemake

from conftest import CMU, SLIDES
from slidesnake.demo import write_demo_slide
from slidesnake.io import read_json
from slidesnake.store import TileStore

pytestmark = pytest.mark.workflow

GOOD = ["A01", "B01", "CMU-1"]  # and boxes: readable (MPP from the sheet) but without tissue
BAD = {"broken": SLIDES / "bad" / "unreadable-tiles.svs", "notatiff": SLIDES / "bad" / "not-a-tiff.svs"}


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """Two generated demo slides, CMU-1, the MPP-less boxes TIFF (MPP from the sheet) and two broken files."""
    folder = tmp_path_factory.mktemp("mixed")
    for slide_id, dataset in (("A01", "site_a"), ("B01", "site_b")):
        write_demo_slide(
            folder / f"{slide_id}.svs", folder / f"{slide_id}.geojson", slide_id, dataset, small=True
        )
    annotations = str(folder / "A01.geojson")  # the label stage is not run here
    rows = [
        ("A01", "PA1", "site_a", folder / "A01.svs", None),
        ("B01", "PB1", "site_b", folder / "B01.svs", None),
        ("CMU-1", "PB2", "site_b", CMU, None),
        ("boxes", "PA2", "site_a", SLIDES / "boxes-generic.tiff", 0.25),
        ("broken", "PA3", "site_a", BAD["broken"], None),
        ("notatiff", "PB3", "site_b", BAD["notatiff"], None),
    ]
    sheet = pd.DataFrame(rows, columns=["slide_id", "patient_id", "dataset", "path", "mpp"])
    sheet["annotations"] = annotations
    sheet.to_csv(folder / "slides.tsv", sep="\t", index=False)
    workdir = make_workdir(folder / "run", folder / "slides.tsv", on_bad_slide="fail")
    targets = [f"results/tiles/{slide}.zarr" for slide in [*GOOD, "boxes", *BAD]]
    done = snakemake(workdir, "--cores", "2", "--keep-going", *targets)
    return workdir, done


def test_the_run_reports_the_failed_slides(mixed_run):
    _, done = mixed_run
    assert done.returncode != 0
    log = done.stdout + done.stderr
    assert "ingest" in log and "broken" in log and "notatiff" in log


def test_good_slides_are_tiled_completely(mixed_run):
    workdir, _ = mixed_run
    for slide_id in GOOD:
        store = workdir / "results" / "tiles" / f"{slide_id}.zarr"
        info = read_json(workdir / "results" / "slides" / slide_id / "info.json")
        qc = read_json(workdir / "results" / "slides" / slide_id / "tiling_qc.json")
        grid = pd.read_csv(workdir / "results" / "slides" / slide_id / "tile_grid.tsv", sep="\t")
        index = TileStore(store).index
        assert len(index) == qc["tiles_written"] == grid["keep"].sum()
        assert TileStore(store).image.shape == (qc["target_height"], qc["target_width"], 3)
        assert TileStore(store).attrs["reader"] == info["reader"] == "tifffile"
        # the demo slides are 0.25 um/px JPEG scans tiled at 0.5: decoded at half size (config default)
        expected = "jpeg-dct" if qc["scale"] == 2 else "none"
        assert qc["resampling"] == TileStore(store).attrs["resampling"] == expected, slide_id
        shards = [p for p in (store / "image" / "c").rglob("*") if p.is_file()]
        held = {(r // 32, c // 32) for r, c in zip(index["row"], index["col"], strict=True)}
        assert len(shards) == len(held)  # one file per 32 x 32 tiles with tissue
    boxes = (workdir / "results" / "logs" / "ingest" / "boxes.log").read_text()
    assert "um/px (sheet)" in boxes  # read with the sheet's MPP, then failed in its tiling stage
    assert "no tissue tile found" in boxes and "on_bad_slide: fail" in boxes  # fail: no quarantine
    assert not (workdir / "results" / "slides" / "boxes").exists()  # a failed job leaves no outputs
    assert not list((workdir / "results" / "tiles").glob(".*tmp"))


@pytest.mark.parametrize("slide_id", sorted(BAD))
def test_failed_slides_leave_a_log_naming_slide_and_file_and_no_outputs(mixed_run, slide_id):
    workdir, _ = mixed_run
    log = (workdir / "results" / "logs" / "ingest" / f"{slide_id}.log").read_text()
    assert f"slide {slide_id!r}" in log
    assert BAD[slide_id].name in log
    assert not (workdir / "results" / "slides" / slide_id / "info.json").exists()
    assert not (workdir / "results" / "tiles" / f"{slide_id}.zarr").exists()
