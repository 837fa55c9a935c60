"""Patch-folder datasets: folders of labelled images (class subfolders, or a CSV of path and label).

Such a dataset has no slides: its items are image files, read and resized on the
fly for training, such as the Kather colorectal tiles or chest/abdomen radiographs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image

from .checksums import pixel_hash
from .errors import PatchError
from .settings import PatchSettings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (row, column, 3) uint8 RGB, whatever its mode or format.

    TIFF files are read with tifffile, everything else with Pillow. Grey images
    are repeated into three channels; alpha is dropped; 16-bit images are scaled
    to 8 bits.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            pixels = tifffile.imread(path)
        else:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB") if image.mode in ("P", "CMYK", "YCbCr") else image)
    except Exception as err:  # noqa: BLE001 - any decoder failure is the same problem for the user
        raise PatchError(f"image {path}: cannot be read ({err})") from err
    if pixels.dtype == np.uint16:
        pixels = (pixels // 257).astype(np.uint8)
    elif pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    elif pixels.dtype != np.uint8:
        raise PatchError(f"image {path}: pixel type {pixels.dtype} is not supported")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[-1] in (2, 4):  # grey + alpha, RGBA
        pixels = pixels[..., :-1]
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels)


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Read an image and resize it to ``size`` x ``size`` with area averaging (or bilinear upsampling)."""
    pixels = read_image(path)
    if pixels.shape[:2] == (size, size):
        return pixels
    shrink = pixels.shape[0] >= size and pixels.shape[1] >= size
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(pixels).resize((size, size), method))


def image_files(folder: Path) -> list[Path]:
    """The image files below ``folder`` (any depth, by suffix), sorted."""
    return [f for f in sorted(folder.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]


def _from_folders(root: Path) -> pd.DataFrame:
    rows = [
        {"path": str(file), "label": folder.name}
        for folder in sorted(p for p in root.iterdir() if p.is_dir())
        for file in image_files(folder)
    ]
    return pd.DataFrame(rows, columns=["path", "label"])


def _from_names(root: Path, label_pattern: str, dataset: str) -> pd.DataFrame:
    rows = [
        {"path": str(file), "label": _name_part(file, label_pattern, "label", dataset)}
        for file in image_files(root)
    ]
    return pd.DataFrame(rows, columns=["path", "label"])


def _from_csv(csv: Path) -> pd.DataFrame:
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in ("path", "label") if c not in table]
    if missing:
        raise PatchError(f"labels CSV {csv}: missing column(s) {missing}; it needs 'path' and 'label'")
    table["path"] = [str(csv.parent / p) for p in table["path"]]
    if "patient" in table and "patient_id" not in table:
        table = table.rename(columns={"patient": "patient_id"})
    return table


def read_patch_dataset(
    dataset: str, *, patches: PatchSettings, classes: tuple[str, ...] | None
) -> pd.DataFrame:
    """List the images of a patch-folder dataset with their label, patient and content hash.

    Parameters
    ----------
    dataset : str
        The dataset's name, for error messages.
    patches : PatchSettings
        ``root`` (a folder with one subfolder of images per class), or
        ``labels_csv`` (columns ``path`` relative to the CSV's folder, ``label``,
        optionally ``patient_id`` or ``patient``); ``label_pattern`` (with
        ``root``: label every image below it from this regular expression on
        its file name, group ``label`` or the first group);
        ``patient_pattern`` (a regular expression on the file name whose group
        ``patient``, first group or whole match is the patient id; without a
        patient column or pattern every image is its own patient).
    classes : tuple of str or None
        The dataset's classes; a label outside them is an error (None: any label).

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (the image path), ``label``, ``patient_id`` and
        ``content_hash`` (:func:`~slidesnake.checksums.pixel_hash` of the decoded
        pixels), sorted by item, plus any other CSV columns.

    Raises
    ------
    PatchError
        For a missing folder or file, an unknown label, or a file name the
        pattern does not match.
    """
    root, labels_csv, patient_pattern = patches.root, patches.labels_csv, patches.patient_pattern
    if labels_csv:
        csv = Path(labels_csv)
        if not csv.is_file():
            raise PatchError(
                f"dataset {dataset!r}: labels CSV {csv} not found (config 'patches: labels_csv')"
            )
        table = _from_csv(csv)
    else:
        folder = Path(root or "")
        if not root or not folder.is_dir():
            raise PatchError(f"dataset {dataset!r}: image folder {folder} not found (config 'patches: root')")
        pattern = patches.label_pattern
        table = _from_names(folder, pattern, dataset) if pattern else _from_folders(folder)
    if table.empty:
        raise PatchError(f"dataset {dataset!r}: no images found in {labels_csv or root}")
    absent = [p for p in table["path"] if not Path(p).is_file()]
    if absent:
        raise PatchError(
            f"dataset {dataset!r}: {len(absent)} image file(s) listed but missing, e.g. {absent[:3]}"
        )
    if classes is not None:
        unknown = sorted(set(table["label"]) - set(classes))
        if unknown:
            raise PatchError(
                f"dataset {dataset!r}: labels {unknown} are not in the dataset's classes {classes}"
            )
    if "patient_id" not in table or (table["patient_id"] == "").any():
        table["patient_id"] = [
            _name_part(Path(p), patient_pattern, "patient", dataset) if patient_pattern else Path(p).name
            for p in table["path"]
        ]
    table["content_hash"] = [pixel_hash(read_image(p)) for p in table["path"]]
    table = table.rename(columns={"path": "item"})
    first = ["item", "label", "patient_id", "content_hash"]
    return table[first + [c for c in table if c not in first]].sort_values("item").reset_index(drop=True)


def _name_part(path: Path, pattern: str, group: str, dataset: str) -> str:
    """The part of a file name that ``pattern`` captures: its named ``group``, else its first group."""
    match = re.search(pattern, path.name)
    if match is None:
        setting = f"patches: {group}_pattern"
        raise PatchError(
            f"dataset {dataset!r}: config '{setting}' {pattern!r} does not match file {path.name!r}"
        )
    if group in match.re.groupindex:
        return match.group(group)
    return match.group(1) if match.re.groups else match.group(0)
