"""Tests for slidesnake.annotations: QuPath GeoJSON and ASAP XML files written to tmp_path, tile labelling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from conftest import defaults
from slidesnake.annotations import read_annotations, tile_labels
from slidesnake.errors import AnnotationError, SlideError
from slidesnake.settings import LabelSettings, ResolutionPolicy
from slidesnake.wsi import plan_tiling, read_slide_info

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


def test_qupath_polygon_without_class_names_slide_and_feature(tmp_path):
    path = _write_json(
        tmp_path / "s.geojson",
        {
            "type": "FeatureCollection",
            "features": [_feature({"type": "Polygon", "coordinates": [SQUARE]}, None)],
        },
    )
    with pytest.raises(SlideError, match=r"slide 'S1'.*s\.geojson.*feature 0"):
        read_annotations(path, "S1")


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
    assert (shapely.distance(union, centres) < size / 16).all()
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
