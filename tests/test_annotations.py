"""Tests for slidesnake.annotations: QuPath GeoJSON and ASAP XML files written to tmp_path, tile labelling."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
import shapely.geometry

from conftest import CMU, defaults
from slidesnake.annotation_files import class_name, read_annotations, regions_on_slide
from slidesnake.annotations import slide_tile_labels, tile_labels
from slidesnake.errors import AnnotationError, SlideError
from slidesnake.quarantine import read_quarantine
from slidesnake.rules.ingest import audit, ingest
from slidesnake.rules.labels import label_table, label_tiles
from slidesnake.settings import LabelSettings, ResolutionPolicy
from slidesnake.store import TileStore
from slidesnake.wsi import plan_tiling
from slidesnake.wsi.probe import read_slide_info

QC = defaults("qc")
SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300], [100, 100]]
HOLE = [[150, 150], [250, 150], [250, 250], [150, 250], [150, 150]]


def _feature(geometry: dict, name: str | None = "Tumor") -> dict:
    properties = {"objectType": "annotation"}
    if name is not None:
        properties["classification"] = {"name": name, "color": [200, 0, 0]}
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def _tiles(*corners: tuple[float, float]) -> pd.DataFrame:
    return pd.DataFrame(corners, columns=["x0", "y0"])


def _settings(class_map=None, unannotated="normal", min_fraction=0.5, ignore=(), exclude=()) -> LabelSettings:
    return LabelSettings(
        source="annotations",
        classes=("normal", "tumor"),
        annotation_classes=class_map or {"Tumor": "tumor"},
        unannotated=unannotated,
        min_fraction=min_fraction,
        ignore=ignore,
        exclude=exclude,
    )


def labelled_tiles(tiles, size, regions, labels, slide_id="S1", path="S1.geojson") -> pd.DataFrame:
    return tile_labels(
        tiles, tile_size_level0=size, regions=regions, labels=labels, slide_id=slide_id, annotation_path=path
    )


def _label(tiles: pd.DataFrame, size: float, regions, min_fraction: float = 0.5) -> pd.DataFrame:
    return labelled_tiles(tiles, size, regions, _settings(min_fraction=min_fraction))


# ----------------------------------------------------------------------------- read_annotations


def test_qupath_feature_collection_polygon_hole_and_multipolygon(tmp_path):
    two_squares = [
        [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]],
        [[[20, 0], [30, 0], [30, 10], [20, 10], [20, 0]]],
    ]
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature({"type": "Polygon", "coordinates": [SQUARE]}, "Tumor"),
            _feature({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, "Stroma"),
            _feature({"type": "MultiPolygon", "coordinates": two_squares}, "Necrosis"),
        ],
    }
    regions = read_annotations(_write_json(tmp_path / "s.geojson", collection), "S1")
    assert [name for name, _ in regions] == ["Tumor", "Stroma", "Necrosis"]
    square, holed, multi = (geom for _, geom in regions)
    assert square.geom_type == "Polygon" and square.area == 200 * 200
    assert holed.geom_type == "Polygon" and len(holed.interiors) == 1
    assert holed.area == 200 * 200 - 100 * 100
    assert not holed.contains(shapely.Point(200, 200))
    assert holed.contains(shapely.Point(120, 120))
    assert multi.geom_type == "MultiPolygon" and len(multi.geoms) == 2 and multi.area == 200


def test_qupath_points_and_lines_are_skipped(tmp_path):
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature({"type": "Point", "coordinates": [5, 5]}, None),
            _feature({"type": "LineString", "coordinates": [[0, 0], [9, 9]]}, None),
            _feature({"type": "Polygon", "coordinates": [SQUARE]}, "Tumor"),
        ],
    }
    regions = read_annotations(_write_json(tmp_path / "s.geojson", collection), "S1")
    assert [name for name, _ in regions] == ["Tumor"]


def test_a_feature_without_geometry_is_skipped_with_a_warning(tmp_path, caplog):
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature(None, "Tumor"),  # GeoJSON allows "geometry": null
            _feature({"type": "Polygon", "coordinates": [SQUARE]}, "Tumor"),
        ],
    }
    with caplog.at_level("WARNING"):
        regions = read_annotations(_write_json(tmp_path / "s.geojson", collection), "S1")
    assert [name for name, _ in regions] == ["Tumor"]
    assert "S1" in caplog.text and "skipped 1 feature(s) without geometry: [0]" in caplog.text


def test_an_invalid_geometry_names_slide_file_and_feature(tmp_path):
    bad = {"type": "FeatureCollection", "features": [_feature({"type": "Polygon"}, "Tumor")]}
    with pytest.raises(SlideError, match=r"slide 'S1'.*s\.geojson.*feature 0 has an invalid geometry"):
        read_annotations(_write_json(tmp_path / "s.geojson", bad), "S1")


def test_an_unclassified_annotation_is_skipped_with_a_warning(tmp_path, caplog):
    path = _write_json(
        tmp_path / "s.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                _feature({"type": "Polygon", "coordinates": [SQUARE]}, None),
                _feature({"type": "Polygon", "coordinates": [HOLE]}, "Tumor"),
            ],
        },
    )
    with caplog.at_level("WARNING"):
        regions = read_annotations(path, "S1")
    assert [name for name, _ in regions] == ["Tumor"]
    assert f"S1: {path}: skipped 1 unclassified annotation(s) (features [0])" in caplog.text


def test_bare_list_of_features_old_qupath_export(tmp_path):
    features = [
        _feature({"type": "Polygon", "coordinates": [SQUARE]}, "Tumor"),
        _feature({"type": "Polygon", "coordinates": [HOLE]}, "Stroma"),
    ]
    regions = read_annotations(_write_json(tmp_path / "old.json", features), "S1")
    assert [name for name, _ in regions] == ["Tumor", "Stroma"]
    assert regions[0][1].area == 200 * 200


def test_asap_xml_polygons(tmp_path):
    path = tmp_path / "s.xml"
    # coordinates deliberately listed out of order: the reader sorts by Order
    path.write_text(
        """<?xml version="1.0"?>
<ASAP_Annotations>
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="Tumor" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="2" X="300" Y="300"/>
        <Coordinate Order="0" X="100" Y="100"/>
        <Coordinate Order="3" X="100" Y="300"/>
        <Coordinate Order="1" X="300" Y="100"/>
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="Stroma" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="0.5" Y="0"/>
        <Coordinate Order="1" X="10.5" Y="0"/>
        <Coordinate Order="2" X="0.5" Y="10"/>
      </Coordinates>
    </Annotation>
    <Annotation Name="Dot" Type="Dot" PartOfGroup="Tumor">
      <Coordinates><Coordinate Order="0" X="5" Y="5"/></Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups><Group Name="Tumor" PartOfGroup="None" Color="#F4FA58"/></AnnotationGroups>
</ASAP_Annotations>
"""
    )
    regions = read_annotations(path, "S1")
    assert [name for name, _ in regions] == ["Tumor", "Stroma"]
    assert regions[0][1].equals(shapely.box(100, 100, 300, 300))
    assert regions[1][1].area == pytest.approx(50.0)


def test_missing_file_names_slide_and_file(tmp_path):
    with pytest.raises(SlideError, match=r"slide 'S7'.*nowhere\.geojson.*not found"):
        read_annotations(tmp_path / "nowhere.geojson", "S7")


def test_broken_json_names_slide_and_file(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(SlideError, match=r"slide 'S7'.*broken\.geojson.*cannot parse") as caught:
        read_annotations(path, "S7")
    assert caught.value.slide_id == "S7"
    assert caught.value.path == str(path)


def test_broken_xml_names_slide_and_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<ASAP_Annotations><Annotations>")
    with pytest.raises(SlideError, match=r"slide 'S7'.*broken\.xml.*cannot parse"):
        read_annotations(path, "S7")


# ----------------------------------------------------------------------------- label_tiles


def test_tiles_inside_outside_and_straddling_a_square():
    regions = [("Tumor", shapely.box(100, 100, 300, 300))]
    tiles = _tiles((100, 100), (200, 200), (400, 400), (0, 0), (50, 100), (80, 100))
    labelled = _label(tiles, 100, regions)
    # inside, inside, outside, touching only at a corner, half covered, 80 % covered
    assert labelled["label"].tolist() == ["tumor", "tumor", "normal", "normal", "tumor", "tumor"]
    assert labelled["fraction_tumor"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.5, 0.8]
    assert labelled[["x0", "y0"]].equals(tiles)


def test_straddling_tile_below_min_fraction_is_excluded():
    regions = [("Tumor", shapely.box(100, 100, 300, 300))]
    tiles = _tiles((25, 100), (50, 100), (75, 150))
    labelled = _label(tiles, 100, regions, min_fraction=0.6)
    assert labelled["fraction_tumor"].tolist() == [0.25, 0.5, 0.75]
    assert labelled["label"].tolist() == ["", "", "tumor"]


def test_tiles_in_the_hole_are_not_tumor():
    holed = shapely.Polygon(SQUARE, [HOLE])
    tiles = _tiles((175, 175), (150, 150), (100, 100), (125, 125))
    labelled = _label(tiles, 50, [("Tumor", holed)])
    # in the hole, in the hole (touching its edge), in the ring, a quarter in the ring
    assert labelled["label"].tolist()[:3] == ["normal", "normal", "tumor"]
    assert labelled["fraction_tumor"].tolist() == [0.0, 0.0, 1.0, 0.75]
    assert labelled["label"].iloc[3] == "tumor"


def test_fractions_of_two_classes_and_no_unannotated_class():
    regions = [("Tumor", shapely.box(0, 0, 50, 100)), ("Stroma", shapely.box(50, 0, 80, 100))]
    class_map = {"Tumor": "tumor", "Stroma": "stroma"}
    tiles = _tiles((0, 0), (500, 500))
    labelled = labelled_tiles(tiles, 100, regions, _settings(class_map, None, 0.4))
    assert labelled["fraction_tumor"].tolist() == [0.5, 0.0]
    assert labelled["fraction_stroma"].tolist() == [0.3, 0.0]
    assert labelled["label"].tolist() == ["tumor", ""]


def test_unknown_annotation_class_names_slide_and_file():
    regions = [("Tumor", shapely.box(0, 0, 10, 10)), ("Necrosis", shapely.box(20, 20, 30, 30))]
    with pytest.raises(AnnotationError, match=r"slide 'S3'.*S3\.geojson.*Necrosis") as caught:
        labelled_tiles(_tiles((0, 0)), 10, regions, _settings(), "S3", "ann/S3.geojson")
    assert caught.value.path == "ann/S3.geojson"


# ----------------------------------------------------------------------------- a real demo slide


def test_labels_of_a_generated_demo_slide_agree_with_its_polygons(small_study):
    slide, annotations = small_study / "A01.svs", small_study / "A01.geojson"
    info = read_slide_info(slide, "A01")
    size = plan_tiling(info, ResolutionPolicy.from_config(defaults("resolution")), 64).tile_size_level0
    xs = np.arange(0, info.width - size + 1, size)
    ys = np.arange(0, info.height - size + 1, size)
    grid = pd.DataFrame([(x, y) for y in ys for x in xs], columns=["x0", "y0"])
    regions = read_annotations(annotations, "A01")
    assert regions and {name for name, _ in regions} == {"Tumor"}
    labelled = labelled_tiles(grid, size, regions, _settings(), "A01", annotations)

    union = shapely.union_all([geom for _, geom in regions])
    tumor = labelled[labelled["label"] == "tumor"]
    normal = labelled[labelled["label"] == "normal"]
    assert len(tumor) and len(normal)
    # a tile at least half covered by a concave polygon can have its centre just outside it
    # (on this slide one tile, 64 % covered, by 4 px): allow a few px, and check the cover itself
    centres = shapely.points(tumor["x0"] + size / 2, tumor["y0"] + size / 2)
    assert shapely.covers(union, centres).mean() > 0.9
    assert (shapely.distance(union, centres) < size / 4).all()
    tumor_boxes = shapely.box(tumor["x0"], tumor["y0"], tumor["x0"] + size, tumor["y0"] + size)
    assert (shapely.area(shapely.intersection(tumor_boxes, union)) >= 0.5 * size**2).all()
    boxes = shapely.box(normal["x0"], normal["y0"], normal["x0"] + size, normal["y0"] + size)
    assert not shapely.intersects(boxes, union).any()
    assert (
        labelled.loc[labelled["label"] == "", "fraction_tumor"].between(0, 0.5, inclusive="neither")
    ).all()


def test_ignored_classes_label_nothing_and_excluded_ones_leave_their_tiles_out():
    regions = [
        ("Tumor", shapely.box(0, 0, 200, 100)),
        ("Ignore*", shapely.box(100, 0, 300, 100)),  # QuPath's class for areas to leave out
        ("Region 1", shapely.box(0, 0, 400, 400)),
    ]
    tiles = _tiles((0, 0), (100, 0), (200, 0), (300, 0), (300, 300))
    with pytest.raises(AnnotationError, match=r"'Ignore\*', 'Region 1'.*'labels: ignore'"):
        labelled_tiles(tiles, 100, regions, _settings())
    labelled = labelled_tiles(tiles, 100, regions, _settings(ignore=("Region*",), exclude=("Ignore*",)))
    # tile 1 is tumor by its annotation, but inside an ignored region: left out; tile 3 too
    assert labelled["label"].tolist() == ["tumor", "", "", "normal", "normal"]


# ------------------------------------------------------------------------ QuPath 0.4/0.5 "Export objects"

#: Level-0 boxes on CMU-1-Small-Region (2220 x 2967 px): two annotations, and a box of other objects.
TUMOR_BOX = (200, 200, 1000, 1200)
POSITIVE_BOX = (1200, 200, 2000, 1000)
OTHERS_BOX = (200, 1600, 1600, 2800)


def _ring(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def _qupath_object(object_type: str, box: tuple, classification: dict | None, **extra) -> dict:
    """One object as QuPath 0.4/0.5 writes it: a UUID ``id``, ``objectType``, ``classification``."""
    properties = {"objectType": object_type, **extra.pop("properties", {})}
    if classification is not None:
        properties["classification"] = classification
    feature = {"type": "Feature", "id": str(uuid.uuid4())}
    feature["geometry"] = {"type": "Polygon", "coordinates": _ring(*box)}
    return {**feature, **extra, "properties": properties}


def qupath_export() -> dict:
    """File > Export objects as GeoJSON of everything: annotations, a derived class, detections and more."""
    tumor = {"name": "Tumor", "color": [200, 0, 0]}
    positive = {"names": ["Tumor", "Positive"], "color": [200, 50, 50]}
    x0, y0, x1, y1 = OTHERS_BOX
    return {
        "type": "FeatureCollection",
        "features": [
            _qupath_object("annotation", TUMOR_BOX, tumor, properties={"isLocked": True}),
            _qupath_object("annotation", POSITIVE_BOX, positive),
            _qupath_object("detection", OTHERS_BOX, tumor, properties={"measurements": {"Area um^2": 12.5}}),
            _qupath_object(
                "cell",
                (x0, y0, x0 + 40, y0 + 40),
                positive,
                nucleusGeometry={"type": "Polygon", "coordinates": _ring(x0 + 10, y0 + 10, x0 + 30, y0 + 30)},
                properties={"measurements": {"Nucleus: Area": 80.0}},
            ),
            _qupath_object("cell", (x0 + 50, y0, x0 + 90, y0 + 40), tumor),
            _qupath_object("tile", OTHERS_BOX, tumor),
            _qupath_object("tmaCore", OTHERS_BOX, None, properties={"name": "A-1", "isMissing": False}),
            _qupath_object("annotation", (x0, y0, x1, y1), None, properties={"name": "check later"}),
        ],
    }


def test_qupath_export_keeps_annotations_names_derived_classes_and_logs_the_rest(tmp_path, caplog):
    path = _write_json(tmp_path / "A01.geojson", qupath_export())
    with caplog.at_level("INFO"):
        regions = read_annotations(path, "A01")
    assert [name for name, _ in regions] == ["Tumor", "Tumor: Positive"]
    assert regions[0][1].equals(shapely.box(*TUMOR_BOX))
    skipped = [r.getMessage() for r in caplog.records if "only annotations" in r.getMessage()]
    assert skipped == [
        f"A01: {path}: skipped 2 cell, 1 detection, 1 tile, 1 tmaCore object(s) "
        "(only annotations are regions)"
    ]
    assert f"A01: {path}: skipped 1 unclassified annotation(s) (features [7])" in caplog.text


@pytest.mark.parametrize(
    ("classification", "expected"),
    [
        ({"names": ["Tumor", "Positive"], "color": [1, 2, 3]}, "Tumor: Positive"),
        ({"names": ["Stroma"], "color": [1, 2, 3]}, "Stroma"),
        ({"name": "Tumor", "color": [1, 2, 3]}, "Tumor"),
        ("Immune cells", "Immune cells"),  # QuPath also reads a bare string
        (
            {"name": "Positive", "colorRGB": -1, "parentClass": {"name": "Tumor", "colorRGB": -1}},
            "Tumor: Positive",
        ),
        ({}, None),
        (None, None),
    ],
)
def test_class_names_as_qupath_shows_them(classification, expected):
    assert class_name(classification) == expected


def test_old_qupath_without_object_type_is_an_annotation_and_v02_ids_name_the_type(tmp_path):
    old = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}}
    features = [
        {**old, "properties": {"classification": {"name": "Tumor", "colorRGB": -3670016}, "isLocked": False}},
        {**old, "id": "PathDetectionObject", "properties": {"classification": {"name": "Tumor"}}},
        {**old, "id": "PathAnnotationObject", "properties": {"classification": {"name": "Stroma"}}},
        {**old, "properties": {"name": "Necrosis"}},  # another tool's export: the class as the name
    ]
    regions = read_annotations(_write_json(tmp_path / "old.json", features), "S1")
    assert [name for name, _ in regions] == ["Tumor", "Stroma", "Necrosis"]


def test_gzip_exports_are_read_whatever_their_suffix(tmp_path):
    text = json.dumps(qupath_export()).encode()
    plain = read_annotations(_write_json(tmp_path / "A01.geojson", qupath_export()), "A01")
    for name in ("A01.geojson.gz", "A01.json.gz", "zipped.geojson"):
        (tmp_path / name).write_bytes(gzip.compress(text))
        regions = read_annotations(tmp_path / name, "A01")
        assert [n for n, _ in regions] == [n for n, _ in plain]
        assert all(a.equals(b) for (_, a), (_, b) in zip(regions, plain, strict=True))


def test_undecodable_and_broken_gzip_files_name_slide_and_file(tmp_path):
    binary = tmp_path / "A01.geojson"
    binary.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not GeoJSON")
    with pytest.raises(AnnotationError, match=r"slide 'A01'.*A01\.geojson.*not UTF-8 text"):
        read_annotations(binary, "A01")
    broken = tmp_path / "A02.geojson.gz"
    broken.write_bytes(gzip.compress(b'{"type": "FeatureCollection"}')[:15])
    with pytest.raises(AnnotationError, match=r"slide 'A02'.*A02\.geojson\.gz.*cannot unzip"):
        read_annotations(broken, "A02")


def test_regions_off_the_slide_are_a_problem_and_far_reaching_ones_a_warning(caplog):
    on = [("Tumor", shapely.box(0, 0, 100, 100))]
    off = [("Tumor", shapely.box(5000, 5000, 6000, 6000)), ("Stroma", shapely.box(-50, -50, -1, -1))]
    where = {"width": 1000, "height": 800, "slide_id": "S1", "annotation_path": "S1.geojson"}
    assert regions_on_slide([], **where) == ""
    assert regions_on_slide(on, **where) == ""
    assert regions_on_slide(off, **where) == (
        "no annotation region lies on the slide (level-0 extent 1000 x 800 px): "
        "a wrong-level or wrong-slide export?"
    )
    assert not caplog.text
    with caplog.at_level("WARNING"):  # a region at level 2 coordinates read as level 0: mostly off
        assert regions_on_slide([*on, ("Tumor", shapely.box(900, 0, 1500, 100))], **where) == ""
    assert "S1: S1.geojson: 1 of 2 region(s) lie more than 10% off the slide" in caplog.text
    assert regions_on_slide(off, **{**where, "width": 0, "height": 0}) == ""  # extent unknown


# ----------------------------------------------------------------------------- a real slide's tile store


@pytest.fixture(scope="module")
def cmu_ingested(tmp_path_factory):
    """Rule ingest on CMU-1-Small-Region (2220 x 2967 px), as the workflow runs it."""
    folder = tmp_path_factory.mktemp("cmu")
    slide_dir, store = folder / "slides" / "CMU-1", folder / "CMU-1.zarr"
    ingest(
        slide_path=str(CMU),
        slide_id="CMU-1",
        slide_settings={
            "sheet_mpp": None,
            "resolution": defaults("resolution"),
            "tiling": {**defaults("tiling"), "tile_size": 128},
        },
        mpp_override=None,
        tissue_config=defaults("tissue"),
        on_bad_slide="fail",
        slide_dir=str(slide_dir),
        store=str(store),
        threads=1,
    )
    return str(slide_dir), str(store)


def _settings_positive() -> LabelSettings:
    return _settings({"Tumor": "tumor", "Tumor: Positive": "tumor"})


def _within(table: pd.DataFrame, size: float, box: tuple) -> pd.Series:
    x0, y0, x1, y1 = box
    return (table["x0"] >= x0) & (table["y0"] >= y0) & (table["x0"] + size <= x1) & (table["y0"] + size <= y1)


def test_a_qupath_export_labels_the_tiles_of_a_real_store(cmu_ingested, tmp_path):
    _, store_path = cmu_ingested
    store = TileStore(store_path)
    size = store.plan.tile_size_level0
    for name in ("A01.geojson", "A01.geojson.gz"):
        path = tmp_path / name
        text = json.dumps(qupath_export()).encode()
        path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
        regions = read_annotations(path, "CMU-1")
        table = slide_tile_labels(
            store, _settings_positive(), regions=regions, annotation_path=str(path), slide_label=None
        )
        in_annotations = _within(table, size, TUMOR_BOX) | _within(table, size, POSITIVE_BOX)
        in_others = _within(table, size, OTHERS_BOX)
        assert in_annotations.sum() > 10 and in_others.sum() > 10
        assert (table.loc[in_annotations, "label"] == "tumor").all()
        assert (table.loc[in_annotations, "fraction_tumor"] == 1.0).all()
        # detections, cells, tiles, the TMA core and the unclassified annotation label nothing
        assert (table.loc[in_others, "label"] == "normal").all()
        assert set(table["slide_id"]) == {"CMU-1"}


def _label_tiles(store: str, files: dict, out_dir, on_bad_slide="skip") -> dict:
    return label_tiles(
        slides=list(files),
        stores=[store] * len(files),
        labels={
            "source": "annotations",
            "classes": ["normal", "tumor"],
            "annotation_classes": {"Tumor": "tumor", "Tumor: Positive": "tumor"},
            "unannotated": "normal",
            "min_fraction": 0.5,
            "ignore": [],
            "exclude": [],
        },
        annotation_files=files,
        slide_labels={},
        out_dir=str(out_dir),
        on_bad_slide=on_bad_slide,
    )


def test_label_tiles_quarantines_unreadable_and_off_slide_annotations_and_labels_the_rest(
    cmu_ingested, tmp_path, caplog
):
    slide_dir, store = cmu_ingested
    good = _write_json(tmp_path / "good.geojson", qupath_export())
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    shifted = qupath_export()
    for feature in shifted["features"]:
        feature["geometry"] = shapely.geometry.mapping(
            shapely.affinity.translate(shapely.geometry.shape(feature["geometry"]), 50_000, 50_000)
        )
    off = _write_json(tmp_path / "off.geojson", shifted)
    out = tmp_path / "labels"
    files = {"CMU-1": str(good), "broken": str(broken), "off": str(off)}
    with caplog.at_level("WARNING"):
        quarantined = _label_tiles(store, files, out)
    assert list(quarantined) == ["broken", "off"]
    assert quarantined["broken"].startswith(f"annotations: {broken}: cannot parse annotations: ")
    assert quarantined["off"] == (
        f"annotations: {off}: no annotation region lies on the slide (level-0 extent 2220 x 2967 px): "
        "a wrong-level or wrong-slide export?"
    )
    assert "quarantined (config 'on_bad_slide: skip'): annotations: " in caplog.text
    labels = {s: pd.read_csv(label_table(str(out), s), sep="\t", keep_default_na=False) for s in files}
    assert (labels["CMU-1"]["label"] == "tumor").sum() > 10
    for slide_id in ("broken", "off"):
        assert len(labels[slide_id]) == len(labels["CMU-1"]) and (labels[slide_id]["label"] == "").all()
    assert read_quarantine([str(out)]) == quarantined
    assert read_quarantine([str(tmp_path / "nowhere")]) == {}

    audit(slide_dirs=[slide_dir], out_tsv=str(tmp_path / "slides.tsv"), label_dirs=[str(out)], qc=QC)
    row = pd.read_csv(tmp_path / "slides.tsv", sep="\t", keep_default_na=False).iloc[0]
    assert row["status"] == "ok"  # the store's slide, CMU-1, was labelled
    _label_tiles(store, {"CMU-1": str(off)}, tmp_path / "off-labels")
    audit(
        slide_dirs=[slide_dir],
        out_tsv=str(tmp_path / "slides.tsv"),
        label_dirs=[str(tmp_path / "off-labels")],
        qc=defaults("qc"),
    )
    row = pd.read_csv(tmp_path / "slides.tsv", sep="\t", keep_default_na=False).iloc[0]
    assert row["status"] == "excluded" and row["reason"] == quarantined["off"]
    assert row["flags"].startswith(f"excluded: annotations: {off}: no annotation region")


def test_label_tiles_with_on_bad_slide_fail_fails_on_a_bad_file(cmu_ingested, tmp_path):
    broken = tmp_path / "broken.geojson"
    broken.write_bytes(b"\x00\xff binary")
    with pytest.raises(AnnotationError, match=r"slide 'CMU-1'.*broken\.geojson.*not UTF-8"):
        _label_tiles(cmu_ingested[1], {"CMU-1": str(broken)}, tmp_path / "labels", on_bad_slide="fail")


def test_outlines_in_microns_have_every_ring_and_only_polygons():
    from slidesnake.annotation_files import rings_um

    holed = shapely.Polygon([(0, 0), (100, 0), (100, 50), (0, 50)], holes=[[(10, 10), (20, 10), (20, 20)]])
    pair = shapely.MultiPolygon([shapely.box(200, 0, 210, 10), shapely.box(300, 0, 310, 10)])
    rings = rings_um([holed, pair, shapely.LineString([(0, 0), (5, 5)])], (0.25, 0.5))
    assert len(rings) == 4  # exterior and hole of the first, one ring each of the pair; the line is none
    np.testing.assert_allclose(rings[0].max(axis=0), [25.0, 25.0])  # 100 px x 0.25, 50 px x 0.5
    np.testing.assert_allclose(rings[1].min(axis=0), [2.5, 5.0])
