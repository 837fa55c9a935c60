"""Read annotation files as their tools mean them: QuPath GeoJSON (plain or gzip) and ASAP XML.

What a QuPath export holds is read as QuPath reads it (qupath-core's ``GsonTools`` and
``QuPathTypeAdapters``): only annotation objects are regions; classes, derived ones included, are
named as QuPath shows them. Coordinates are level-0 pixels (x = column, y = row), as QuPath and
ASAP write them. :mod:`slidesnake.annotations` labels tiles from the regions.
"""

from __future__ import annotations

import gzip
import json
import logging
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

from .errors import AnnotationError

log = logging.getLogger(__name__)

#: QuPath's object types that are not regions (``properties.objectType``, QuPath 0.4+; ``tma_core`` an
#: older spelling). Every object of another type is skipped too; one without a type is an annotation.
QUPATH_OBJECT_TYPES = ("annotation", "detection", "cell", "tile", "tmaCore", "tma_core", "root")

#: QuPath 0.2 wrote the object type as the feature's ``id`` (0.4+ writes a UUID there).
LEGACY_TYPE_IDS = {
    "PathAnnotationObject": "annotation",
    "PathDetectionObject": "detection",
    "PathCellObject": "cell",
    "PathTileObject": "tile",
    "TMACoreObject": "tmaCore",
    "PathRootObject": "root",
}

#: The first bytes of a gzip file.
GZIP_MAGIC = b"\x1f\x8b"


def _geojson_features(data: dict | list) -> list[dict]:
    if isinstance(data, list):  # QuPath's older export: a bare list of features
        return data
    if not isinstance(data, dict):
        raise ValueError("not a GeoJSON Feature or FeatureCollection")
    if data.get("type") == "FeatureCollection":
        return list(data.get("features", []))
    if data.get("type") == "Feature":
        return [data]
    raise ValueError("not a GeoJSON Feature or FeatureCollection")


def object_type(feature: dict) -> str:
    """The QuPath object type of a GeoJSON feature, ``annotation`` when it says none.

    QuPath 0.4+ writes ``properties.objectType`` (older: ``object_type``; ``type`` is read when it
    holds one of :data:`QUPATH_OBJECT_TYPES`), QuPath 0.2 the class name as the feature's ``id``.
    """
    props = feature.get("properties") or {}
    for key in ("objectType", "object_type"):
        if isinstance(props.get(key), str):
            return props[key]
    if props.get("type") in QUPATH_OBJECT_TYPES:
        return props["type"]
    return LEGACY_TYPE_IDS.get(str(feature.get("id")), "annotation")


def class_name(classification: object) -> str | None:
    """The class QuPath shows for a ``classification`` value (None: unclassified).

    QuPath 0.4+ writes ``{"name": "Tumor", "color": [...]}`` and, for a derived class,
    ``{"names": ["Tumor", "Positive"], "color": [...]}``, shown as ``Tumor: Positive``; older
    QuPath wrote a derived class with its ``parentClass``; a bare string is a class too.
    """
    if isinstance(classification, str):
        return classification or None
    if not isinstance(classification, dict):
        return None
    names = classification.get("names")
    if isinstance(names, list) and names:
        return ": ".join(str(name) for name in names)
    name = classification.get("name") or None
    parent = class_name(classification.get("parentClass"))
    if parent and name:
        return f"{parent}: {name}"
    return name or parent


def _feature_class(feature: dict) -> str | None:
    """The feature's class: its ``classification``; without ``objectType`` (other tools) its ``name``."""
    props = feature.get("properties") or {}
    name = class_name(props.get("classification"))
    if name is None and "objectType" not in props and isinstance(props.get("name"), str):
        name = props["name"] or None
    return name


def _read_bytes(path: Path, slide_id: str) -> bytes:
    """The file's content, unzipped when it is gzip (told by its first bytes, whatever its suffix)."""
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise AnnotationError(slide_id, path, f"cannot unzip annotations (gzip): {err}") from err


def _decode(data: bytes, path: Path, slide_id: str) -> str:
    """GeoJSON text (UTF-8, as QuPath writes it); anything else is an :class:`AnnotationError`."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problem = (
            f"cannot parse annotations: not UTF-8 text (byte {err.start}): "
            "export QuPath GeoJSON (optionally gzip) or ASAP XML"
        )
        raise AnnotationError(slide_id, path, problem) from err


def _is_xml(path: Path, data: bytes) -> bool:
    """An ASAP XML file: ``.xml`` (or ``.xml.gz``), or content starting with ``<``."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    return ".xml" in suffixes or data.lstrip().startswith(b"<")


def read_annotations(path: str | Path, slide_id: str) -> list[tuple[str, shapely.Geometry]]:
    """Read the classified regions of an annotation file, as QuPath means its objects.

    Only annotation objects are regions: QuPath's "Export objects" also writes detections, cells,
    tiles and TMA cores (``properties.objectType``), skipped with one log line of counts per file.
    A feature without an object type (QuPath before 0.4, other tools) is an annotation. A derived
    class (``"names": ["Tumor", "Positive"]``) is named as QuPath shows it, ``Tumor: Positive``.
    An unclassified annotation is skipped with a warning naming its feature numbers (it labels
    nothing; its tiles are ``unannotated`` unless other regions cover them). Gzip files
    (``.geojson.gz``, detected by their first bytes) are read as their content.

    Parameters
    ----------
    path : str or Path
        A QuPath GeoJSON (``.geojson``/``.json``, optionally gzip) or ASAP XML (``.xml``) file.
    slide_id : str
        The slide, for error messages.

    Returns
    -------
    list of (str, shapely.Geometry)
        Class name and region (polygons and multipolygons, holes kept), in
        level-0 pixels.

    Raises
    ------
    AnnotationError
        When the file is missing, cannot be unzipped, decoded or parsed, or a geometry is invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(slide_id, path, "annotation file not found (sheet column 'annotations')")
    data = _read_bytes(path, slide_id)
    xml = _is_xml(path, data)
    text = "" if xml else _decode(data, path, slide_id)
    try:
        if xml:
            return _read_asap(data)
        features = _geojson_features(json.loads(text))
    except (ValueError, ET.ParseError) as err:
        raise AnnotationError(slide_id, path, f"cannot parse annotations: {err}") from err
    return _regions(features, path, slide_id)


def _regions(features: list, path: Path, slide_id: str) -> list[tuple[str, shapely.Geometry]]:
    """The classified annotation regions of GeoJSON features; what is skipped is logged once per kind."""
    regions, empty, unclassified = [], [], []
    skipped: Counter[str] = Counter()
    for number, feature in enumerate(features):
        if not isinstance(feature, dict) or not feature.get("geometry"):
            empty.append(number)  # GeoJSON allows a feature without geometry (QuPath writes none)
            continue
        kind = object_type(feature)
        if kind != "annotation":
            skipped[kind] += 1
            continue
        try:
            geometry = shape(feature["geometry"])
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise AnnotationError(slide_id, path, f"feature {number} has an invalid geometry: {err}") from err
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        name = _feature_class(feature)
        if not name:
            unclassified.append(number)
            continue
        regions.append((name, shapely.make_valid(geometry)))
    _log_skipped(slide_id, path, skipped, empty, unclassified)
    return regions


def _log_skipped(
    slide_id: str, path: Path, skipped: Counter[str], empty: list[int], unclassified: list[int]
) -> None:
    """One log line per kind of feature skipped: other object types, no geometry, no class."""
    if skipped:
        counts = ", ".join(f"{count} {kind}" for kind, count in skipped.most_common())
        log.info("%s: %s: skipped %s object(s) (only annotations are regions)", slide_id, path, counts)
    if empty:
        log.warning(
            "%s: %s: skipped %d feature(s) without geometry: %s", slide_id, path, len(empty), empty[:20]
        )
    if unclassified:
        log.warning(
            "%s: %s: skipped %d unclassified annotation(s) (features %s): give them a class in QuPath "
            "to label tiles with them",
            slide_id,
            path,
            len(unclassified),
            unclassified[:20],
        )


def _read_asap(data: bytes) -> list[tuple[str, shapely.Geometry]]:
    root = ET.fromstring(data)
    regions = []
    for annotation in root.iter("Annotation"):
        if annotation.get("Type", "Polygon") not in ("Polygon", "Spline"):
            continue
        points = sorted(annotation.iter("Coordinate"), key=lambda c: int(c.get("Order", 0)))
        ring = [(float(c.get("X")), float(c.get("Y"))) for c in points]
        if len(ring) >= 3:
            name = annotation.get("PartOfGroup") or annotation.get("Name")
            regions.append((name, shapely.make_valid(shapely.Polygon(ring))))
    return regions


#: A region with more than this share of its area off the slide is warned about: a region drawn to
#: the slide's edge has a sliver off it at most, one of a wrong-level or wrong-slide export far more.
OFF_SLIDE_SHARE = 0.10


def regions_on_slide(
    regions: Sequence[tuple[str, shapely.Geometry]],
    *,
    width: float,
    height: float,
    slide_id: str,
    annotation_path: str | Path,
) -> str:
    """Whether a slide's annotation regions lie on it (level-0 extent ``width`` x ``height`` px).

    Parameters
    ----------
    regions : sequence of (str, shapely.Geometry)
        The slide's regions, from :func:`read_annotations` (level-0 pixels).
    width, height : float
        The slide's level-0 size in pixels (0: unknown, nothing is checked).
    slide_id, annotation_path : str
        For the log.

    Returns
    -------
    str
        The problem when regions exist and none covers any of the slide (a wrong-level or
        wrong-slide export), else empty. Regions with more than :data:`OFF_SLIDE_SHARE` of their
        area off the slide are logged as a warning (their tiles are labelled as usual).
    """
    geometries = np.asarray([geom for _, geom in regions], dtype=object)
    if not len(geometries) or width <= 0 or height <= 0:
        return ""
    area = shapely.area(geometries)
    inside = shapely.area(shapely.intersection(geometries, shapely.box(0, 0, width, height)))
    extent = f"level-0 extent {width:.0f} x {height:.0f} px"
    if not (inside > 0).any():
        return f"no annotation region lies on the slide ({extent}): a wrong-level or wrong-slide export?"
    off = np.flatnonzero((area > 0) & (area - inside > OFF_SLIDE_SHARE * area))
    if len(off):
        bounds = shapely.total_bounds(geometries[off])
        log.warning(
            "%s: %s: %d of %d region(s) lie more than %d%% off the slide (%s; they reach x %.0f..%.0f, "
            "y %.0f..%.0f): a wrong-level export?",
            slide_id,
            annotation_path,
            len(off),
            len(geometries),
            round(100 * OFF_SLIDE_SHARE),
            extent,
            *bounds[[0, 2, 1, 3]],
        )
    return ""


def rings_um(regions: Sequence[shapely.Geometry], mpp: tuple[float, float]) -> list[np.ndarray]:
    """The outlines (exteriors and holes) of the polygons of `regions` (level-0 pixels) in microns.

    Parameters
    ----------
    regions : sequence of shapely.Geometry
        Polygons or multipolygons in level-0 pixels (x = column, y = row); other geometries are skipped.
    mpp : (float, float)
        The slide's level-0 microns per pixel along x and y.

    Returns
    -------
    list of numpy.ndarray
        One (point, 2) array of x, y microns per ring, for drawing over a figure in microns.
    """
    rings = []
    for region in regions:
        for polygon in getattr(region, "geoms", [region]):
            if polygon.geom_type == "Polygon":
                rings += [
                    np.asarray(ring.coords) * np.asarray(mpp)
                    for ring in [polygon.exterior, *polygon.interiors]
                ]
    return rings
