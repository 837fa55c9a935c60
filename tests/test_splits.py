"""Tests for slidesnake.splits: patient-grouped, stratified, seeded splits and the leakage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import defaults
from slidesnake.errors import SplitError
from slidesnake.settings import SplitSettings
from slidesnake.splits import (
    SPLITS_TABLE,
    class_balance,
    leakage_groups,
    leakage_report,
    slides_sharing_tiles,
)
from slidesnake.splits import make_splits as _make_splits

FRACTIONS = {"train": 0.5, "val": 0.25, "test": 0.25}


def make_splits(items, fractions, *, folds=1, seed=0, dataset="d", duplicates="merge", identical=None):
    """make_splits with the settings spelled out as keywords (the config's values)."""
    settings = SplitSettings.from_config(
        defaults("splits") | {"seed": seed, "fractions": fractions, "folds": folds, "duplicates": duplicates}
    )
    return _make_splits(items, settings=settings, dataset=dataset, identical=identical)


def _items(patients: int = 20, seed: int = 0) -> pd.DataFrame:
    """1-3 items per patient; even patients are 'normal', odd ones 'tumor'; every item unique."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(patients):
        label = "tumor" if p % 2 else "normal"
        for k in range(int(rng.integers(1, 4))):
            rows.append(
                {
                    "item": f"P{p:02d}_{k}",
                    "patient_id": f"P{p:02d}",
                    "label": label,
                    "content_hash": f"h{p}_{k}",
                }
            )
    return pd.DataFrame(rows)


def _sides_per_patient(table: pd.DataFrame, column: str = "split") -> pd.Series:
    return table.groupby("patient_id")[column].nunique()


def test_no_patient_on_two_sides_and_every_split_non_empty():
    items = _items()
    for seed in range(5):
        table = make_splits(items, FRACTIONS, seed=seed, dataset="d")
        assert (_sides_per_patient(table) == 1).all()
        assert set(table["split"]) == {"train", "val", "test"}
        assert leakage_report(table)["ok"]


def test_output_is_the_items_sorted_with_group_split_and_fold():
    items = _items().sample(frac=1, random_state=3)
    table = make_splits(items, FRACTIONS, seed=0)
    assert table["item"].tolist() == sorted(items["item"])
    assert {"group", "split", "fold"} <= set(table.columns)
    assert (table.loc[table["split"] == "test", "fold"] == -1).all()
    assert (table.loc[table["split"] != "test", "fold"] == 0).all()


def test_no_validation_split_when_its_fraction_is_zero():
    table = make_splits(_items(), {"train": 0.75, "val": 0, "test": 0.25}, seed=2)
    assert set(table["split"]) == {"train", "test"}
    assert (_sides_per_patient(table) == 1).all()


def test_patient_fractions_are_roughly_honoured():
    items = _items(patients=40)
    table = make_splits(items, FRACTIONS, seed=7)
    shares = table.drop_duplicates("patient_id")["split"].value_counts(normalize=True)
    for name, wanted in FRACTIONS.items():
        assert shares[name] == pytest.approx(wanted, abs=0.1)


def test_same_seed_same_splits_other_seed_other_splits():
    items = _items()
    first = make_splits(items, FRACTIONS, folds=3, seed=42)
    pd.testing.assert_frame_equal(first, make_splits(items, FRACTIONS, folds=3, seed=42))
    others = [make_splits(items, FRACTIONS, folds=3, seed=seed)["split"] for seed in range(5)]
    assert any(not other.equals(first["split"]) for other in others)


def test_every_split_has_both_labels():
    items = _items(patients=20)
    for seed in range(5):
        table = make_splits(items, FRACTIONS, seed=seed)
        per_split = table.groupby("split")["label"].nunique()
        assert (per_split == 2).all(), f"seed {seed}: {per_split.to_dict()}"


def test_folds_cover_development_items_and_keep_patients_together():
    items = _items(patients=30)
    table = make_splits(items, FRACTIONS, folds=4, seed=1)
    development = table[table["split"] != "test"]
    assert (table.loc[table["split"] == "test", "fold"] == -1).all()
    assert sorted(development["fold"].unique()) == [0, 1, 2, 3]
    assert (_sides_per_patient(development, "fold") == 1).all()
    assert (_sides_per_patient(table) == 1).all()


def _site_splits(items, sites, *, folds, site_column="site"):
    settings = SplitSettings.from_config(
        defaults("splits") | {"fractions": FRACTIONS, "folds": folds, "site_column": site_column, "seed": 3}
    )
    return _make_splits(items, settings=settings, dataset="d", sites=sites)


def test_site_preserving_folds_put_each_site_in_one_fold():
    items = _items(patients=40).sample(frac=1, random_state=0)  # not in item order: sites must follow
    site_of_patient = {f"P{p:02d}": f"site{p % 5}" for p in range(40)}
    sites = items["patient_id"].map(site_of_patient)
    table = _site_splits(items, sites, folds=4)
    table["site"] = table["patient_id"].map(site_of_patient)
    development = table[table["split"] != "test"]
    assert (development.groupby("site")["fold"].nunique() == 1).all()
    assert sorted(development["fold"].unique()) == [0, 1, 2, 3]
    assert (_sides_per_patient(table) == 1).all()
    # without sites the same items spread a site over several folds
    spread = make_splits(items, FRACTIONS, folds=4, seed=3)
    spread["site"] = spread["patient_id"].map(site_of_patient)
    assert (spread[spread["split"] != "test"].groupby("site")["fold"].nunique() > 1).any()


def test_fewer_sites_than_folds_is_a_clear_error():
    items = _items(patients=20)
    sites = items["patient_id"].map(lambda p: "north" if int(p[1:]) < 10 else "south")
    with pytest.raises(
        SplitError, match=r"dataset 'd': 2 site\(s\) \['north', 'south'\] in column 'site' for 3 folds"
    ):
        _site_splits(items, sites, folds=3)


def test_identical_items_of_two_patients_are_merged():
    items = _items()
    # P00_0 and P01_0 (two patients, two labels) hold the same bytes
    items.loc[items["item"] == "P01_0", "content_hash"] = "h0_0"
    groups = leakage_groups(items.sort_values("item").reset_index(drop=True), duplicates="merge")
    assert groups.nunique() == items["patient_id"].nunique() - 1
    for seed in range(5):
        table = make_splits(items, FRACTIONS, folds=2, seed=seed, duplicates="merge")
        pair = table[table["content_hash"] == "h0_0"]
        assert len(pair) == 2 and pair["group"].nunique() == 1
        assert pair["split"].nunique() == 1 and pair["fold"].nunique() == 1
        # the whole of both patients goes with them
        assert table.loc[table["patient_id"].isin(["P00", "P01"]), "split"].nunique() == 1
        report = leakage_report(table)
        assert report["ok"] and report["duplicate_items"] == [["P00_0", "P01_0"]]


def test_identical_items_of_two_patients_are_refused_with_error():
    items = _items()
    items.loc[items["item"] == "P01_0", "content_hash"] = "h0_0"
    with pytest.raises(SplitError, match=r"identical content.*P00_0.*P01_0"):
        make_splits(items, FRACTIONS, duplicates="error")


def test_identical_items_of_one_patient_are_not_an_error():
    items = _items(seed=1)
    patient = items["patient_id"].value_counts().index[0]  # a patient with several items
    copies = items.index[items["patient_id"] == patient][:2]
    items.loc[copies, "content_hash"] = "same"
    table = make_splits(items, FRACTIONS, duplicates="error")
    assert table.loc[table["content_hash"] == "same", "split"].nunique() == 1


def test_leakage_report_finds_a_patient_on_two_sides():
    bad = pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "patient_id": ["P1", "P1", "P2", "P3"],
            "split": ["train", "test", "val", "test"],
            "content_hash": ["h1", "h2", "h3", "h4"],
        }
    )
    report = leakage_report(bad)
    assert not report["ok"]
    assert report["patients_on_several_sides"] == ["P1"]
    assert report["duplicates_on_several_sides"] == []


def test_leakage_report_finds_a_duplicate_on_two_sides():
    bad = pd.DataFrame(
        {
            "item": ["a", "b", "c", "d"],
            "patient_id": ["P1", "P2", "P3", "P4"],
            "split": ["train", "test", "val", "val"],
            "content_hash": ["same", "same", "h3", "h4"],
        }
    )
    report = leakage_report(bad)
    assert not report["ok"]
    assert report["patients_on_several_sides"] == []
    assert report["duplicates_on_several_sides"] == [["a", "b"]]
    assert report["duplicate_items"] == [["a", "b"]]


def test_too_few_patients_in_a_class_names_dataset_and_class():
    items = _items(patients=20)
    # only two 'rare' patients: fewer than the three splits need
    rare = items["patient_id"].isin(["P00", "P02"])
    items.loc[rare, "label"] = "rare"
    with pytest.raises(SplitError, match=r"dataset 'site_a'.*'rare' has 2") as caught:
        make_splits(items, FRACTIONS, dataset="site_a")
    assert "normal" not in str(caught.value) and "tumor" not in str(caught.value)


def test_too_few_patients_for_the_folds():
    items = _items(patients=8)  # four patients per class
    make_splits(items, FRACTIONS, folds=4)
    with pytest.raises(SplitError, match=r"dataset 'x'.*5 fold"):
        make_splits(items, FRACTIONS, folds=5, dataset="x")


def test_class_balance_counts_rows_per_split_and_label():
    rows = pd.DataFrame(
        {
            "split": ["test", "train", "train", "train", "val", "test"],
            "label": ["tumor", "normal", "tumor", "tumor", "normal", "tumor"],
        }
    )
    balance = class_balance(rows)
    expected = pd.DataFrame(
        {"split": ["train", "val", "test"], "normal": [1, 1, 0], "tumor": [2, 0, 2]},
    )
    pd.testing.assert_frame_equal(balance, expected, check_dtype=False)


def test_class_balance_of_a_real_split_adds_up():
    items = _items()
    table = make_splits(items, FRACTIONS, seed=3)
    balance = class_balance(table).set_index("split")
    assert balance.to_numpy().sum() == len(items)
    assert balance.loc["test", "tumor"] == ((table["split"] == "test") & (table["label"] == "tumor")).sum()


def test_items_sharing_content_outside_the_hash_are_merged_and_checked():
    from slidesnake.splits import identical_sets

    items = pd.DataFrame(
        {
            "item": [f"S{k}" for k in range(12)],
            "patient_id": [f"P{k}" for k in range(12)],
            "label": ["a", "b"] * 6,
        }
    )
    shared_tile = [["S0", "S7"]]  # e.g. a slide and a re-saved copy: different files, same tiles
    assert identical_sets(items, shared_tile) == [["S0", "S7"]]
    for seed in range(5):
        table = make_splits(
            items, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=seed, identical=shared_tile
        )
        pair = table[table["item"].isin(["S0", "S7"])]
        assert pair["split"].nunique() == 1 and pair["group"].nunique() == 1
        assert leakage_report(table, shared_tile)["ok"]
    table = make_splits(items, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    split_of = dict(zip(table["item"], table["split"], strict=True))
    other = next(s for s in table["item"] if split_of[s] != split_of["S0"])
    report = leakage_report(table, [["S0", other]])
    assert not report["ok"] and report["duplicates_on_several_sides"] == [sorted(["S0", other])]
    with pytest.raises(SplitError, match="identical content"):
        make_splits(
            items, {"train": 0.5, "val": 0.25, "test": 0.25}, duplicates="error", identical=shared_tile
        )


def test_slides_sharing_a_tile_hash_are_found():
    hashes = [
        pd.DataFrame({"item": "S1", "hash": [1, 2, 3]}),
        pd.DataFrame({"item": "S1-copy", "hash": [3]}),
        pd.DataFrame({"item": "other", "hash": [12345]}),
    ]
    assert slides_sharing_tiles(hashes) == [["S1", "S1-copy"]]
    assert slides_sharing_tiles([]) == []


def _audit(slides: dict[str, str]) -> pd.DataFrame:
    """An audit table of ok slides with these file checksums (every other column a plain value)."""
    from slidesnake.audit import AUDIT_TABLE

    plain = {"text": "", "number": 0, "bool": False}
    base = {column: plain[kind] for column, kind in AUDIT_TABLE.columns.items()} | {"status": "ok"}
    return pd.DataFrame([base | {"slide_id": s, "sha256": sha} for s, sha in slides.items()])


def test_a_cohort_in_its_models_data_is_refused_by_patient_and_by_checksum(tmp_path):
    """Rule split_cohort checks what the model really trained on: its split table's patients (as text:
    '007' is not '7') and the audit's checksums of its slides."""
    from slidesnake.audit import AUDIT_TABLE
    from slidesnake.rules.labels import split_cohort

    AUDIT_TABLE.write(
        _audit({"A1": "aa", "A2": "bb", "C1": "aa", "C2": "cc", "C3": "dd"}), tmp_path / "a.tsv"
    )
    model = pd.DataFrame(
        {"item": ["A1", "A2"], "label": "tumor", "tiles": 4, "patient_id": ["P1", "007"]}
        | {"content_hash": ["aa", "bb"], "group": [0, 1], "split": "train", "fold": -1}
    )
    SPLITS_TABLE.write(model, tmp_path / "model.tsv")

    def split(patients):
        return split_cohort(
            cohort="c",
            model="m",
            slides=["C1", "C2", "C3"],
            patients=patients,
            label_tsvs=[],
            audit_tsv=str(tmp_path / "a.tsv"),
            model_split_tsv=str(tmp_path / "model.tsv"),
            model_slides=["A1", "A2"],
            positive_class="tumor",
            out_tsv=str(tmp_path / "c.tsv"),
            leakage_json=str(tmp_path / "c.json"),
        )

    with pytest.raises(SplitError) as refused:
        split(["Q1", "P1", "7"])
    message = str(refused.value)
    assert "slide 'C1' has the same content as slide 'A1' of model 'm'" in message
    assert "patient 'P1' has slides ['C2'] in the cohort and ['A1'] in the training data" in message
    assert "'7'" not in message and "'007'" not in message
    AUDIT_TABLE.write(
        _audit({"A1": "aa", "A2": "bb", "C1": "ee", "C2": "cc", "C3": "dd"}), tmp_path / "a.tsv"
    )
    table = split(["Q1", "Q2", "7"])
    assert table["split"].tolist() == ["external"] * 3
    assert SPLITS_TABLE.read(tmp_path / "c.tsv")["patient_id"].tolist() == ["Q1", "Q2", "7"]
