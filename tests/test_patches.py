import shutil

import numpy as np
import pytest

from conftest import SHARED, defaults
from slidesnake.errors import PatchError
from slidesnake.patches import load_image, read_image
from slidesnake.patches import read_patch_dataset as _read_patch_dataset
from slidesnake.settings import PatchSettings, SplitSettings
from slidesnake.splits import leakage_report, make_splits

XRAY_CSV = SHARED / "xray" / "labels.csv"
KATHER = SHARED / "tiles" / "kather2016-texture"
NCT = SHARED / "tiles" / "nct-crc-he-100k"
DUPLICATE = "PMC2584007_1752-1947-2-335-2"


def read_patch_dataset(dataset, classes=None, **patches):
    """read_patch_dataset with the ``patches:`` settings as keywords (unset ones as the schema's null)."""
    values = dict.fromkeys(("root", "label_pattern", "labels_csv", "patient_pattern", "split_column"))
    settings = PatchSettings.from_config({**values, "image_size": 224, "mpp": None, **patches})
    return _read_patch_dataset(dataset, patches=settings, classes=classes)


@pytest.fixture(scope="module")
def xray():
    return read_patch_dataset("xray", labels_csv=str(XRAY_CSV), classes=("abd", "chest"))


def test_radiographs_load_with_labels_and_given_split(xray):
    assert len(xray) == 77
    assert xray["label"].value_counts().to_dict() == {"chest": 39, "abd": 38}
    assert xray["split"].value_counts().to_dict() == {"TRAIN": 65, "VAL": 10, "TEST": 2}
    # no patient information: every image is its own patient
    assert xray["patient_id"].is_unique
    assert any("(1).png" in item for item in xray["item"])  # names with spaces and parentheses


def test_radiograph_duplicate_pair_is_found_by_pixel_hash(xray):
    groups = [g["item"].tolist() for _, g in xray.groupby("content_hash") if len(g) > 1]
    assert len(groups) == 1
    assert sorted(item.rsplit("/", 1)[-1] for item in groups[0]) == [
        f"{DUPLICATE} (1).png",
        f"{DUPLICATE}.png",
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_radiograph_duplicates_stay_on_one_side_of_new_splits(xray, seed):
    settings = SplitSettings.from_config(
        defaults("splits")
        | {
            "seed": seed,
            "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
            "folds": 1,
            "duplicates": "merge",
        }
    )
    splits = make_splits(xray, settings=settings, dataset="xray")
    pair = splits[splits["item"].str.contains(DUPLICATE, regex=False)]
    assert len(pair) == 2 and pair["split"].nunique() == 1 and pair["group"].nunique() == 1
    report = leakage_report(splits)
    assert report["ok"] and len(report["duplicate_items"]) == 1


def test_given_split_with_the_duplicate_on_two_sides_is_reported(xray):
    bad = xray.assign(split=np.where(xray["split"] == "TRAIN", "train", "val"), group=range(len(xray)))
    first = bad.index[bad["item"].str.contains(f"{DUPLICATE}.png", regex=False)][0]
    bad.loc[first, "split"] = "train"
    report = leakage_report(bad)
    assert not report["ok"]
    assert len(report["duplicates_on_several_sides"]) == 1


def test_radiographs_are_grey_and_become_rgb(xray):
    pixels = read_image(xray["item"].iloc[0])
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8
    assert (pixels[..., 0] == pixels[..., 1]).all()
    assert load_image(xray["item"].iloc[0], 96).shape == (96, 96, 3)


def test_kather_2016_class_folders_load_eight_classes_with_patients_from_names():
    table = read_patch_dataset("kather", root=str(KATHER), patient_pattern=r"CRC-Prim-HE-(?P<patient>\d+)")
    assert len(table) == 24
    assert table["label"].nunique() == 8
    assert (table["label"].value_counts() == 3).all()
    assert table["patient_id"].str.fullmatch(r"\d+").all()
    assert table["patient_id"].nunique() < len(table)  # several tiles come from one patient's slide
    assert read_image(table["item"].iloc[0]).shape == (150, 150, 3)


def test_nct_crc_he_loads_nine_classes_from_the_csv_and_from_file_names():
    table = read_patch_dataset("nct", labels_csv=str(NCT / "labels.csv"))
    assert sorted(table["label"]) == ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    assert all(read_image(p).shape == (224, 224, 3) for p in table["item"])
    by_name = read_patch_dataset("nct", root=str(NCT), label_pattern=r"^(?P<label>[A-Z]+)-")
    assert by_name[["label", "content_hash"]].equals(table[["label", "content_hash"]])


def test_crc_val_he_single_tile_labelled_from_its_name():
    table = read_patch_dataset(
        "crc-val", root=str(SHARED / "tiles" / "crc-val-he-7k"), label_pattern=r"7K-([A-Z]+)-"
    )
    assert table["label"].tolist() == ["NORM"]


def test_pattern_that_does_not_match_names_the_file():
    with pytest.raises(PatchError, match=r"patient_pattern.*does not match file '.*\.tif'"):
        read_patch_dataset("kather", root=str(KATHER), patient_pattern=r"PATIENT-(\d+)")


def test_unknown_label_and_missing_inputs_are_clear_errors(tmp_path):
    with pytest.raises(PatchError, match=r"dataset 'nct': labels \['ADI'.*not in the dataset's classes"):
        read_patch_dataset("nct", labels_csv=str(NCT / "labels.csv"), classes=("TUM",))
    with pytest.raises(PatchError, match="labels CSV .* not found"):
        read_patch_dataset("x", labels_csv=str(tmp_path / "labels.csv"))
    with pytest.raises(PatchError, match="image folder .* not found"):
        read_patch_dataset("x", root=str(tmp_path / "nothing"))
    (tmp_path / "labels.csv").write_text("path,label\nmissing.png,a\n")
    with pytest.raises(PatchError, match="1 image file.*missing"):
        read_patch_dataset("x", labels_csv=str(tmp_path / "labels.csv"))


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(PatchError, match=r"broken\.png: cannot be read"):
        read_patch_dataset("x", root=str(tmp_path))


def test_same_pixels_in_another_format_are_duplicates(tmp_path):
    (tmp_path / "a").mkdir()
    source = sorted((KATHER / "01_TUMOR").iterdir())[0]
    shutil.copy(source, tmp_path / "a" / "one.tif")
    from PIL import Image

    Image.fromarray(read_image(source)).save(tmp_path / "a" / "two.png")
    table = read_patch_dataset("x", root=str(tmp_path))
    assert table["content_hash"].nunique() == 1
