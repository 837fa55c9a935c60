"""Confidence intervals honest at every n: Clopper-Pearson for slides and patients, the patient bootstrap
for tiles, 'not estimable' with its reason where neither gives one; never a zero-width interval."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from slidesnake.crossval import crossval_metrics
from slidesnake.evaluation import evaluation_tables
from slidesnake.intervals import clopper_pearson, label
from slidesnake.metrics import METRICS, class_aucs
from slidesnake.report.html import with_intervals
from slidesnake.settings import EvaluationSettings

SETTINGS = EvaluationSettings(bootstrap=300, seed=7)
CLASSES = ("normal", "tumor")


def tiles_of(slides: list[tuple[str, str, bool, int, int]], split: str = "test") -> pd.DataFrame:
    """Scored tiles: per slide (slide, patient, tumor slide?, tiles, tiles called wrong)."""
    rows = []
    for slide, patient, tumor, n, wrong in slides:
        for k in range(n):
            label = "tumor" if tumor and k % 2 == 0 else "normal"  # a tumor slide has normal tissue too
            right = k >= wrong
            p = (0.9 if label == "tumor" else 0.1) if right else (0.2 if label == "tumor" else 0.8)
            p += 0.001 * (k % 7)  # some spread of scores
            rows.append(
                {"item": slide, "patient_id": patient, "split": split, "label": label, "row": k, "col": 0}
                | {"y": 64 * k, "x": 0, "p_normal": 1 - p, "p_tumor": p}
            )
    scored = pd.DataFrame(rows)
    scored["predicted"] = np.where(scored["p_tumor"] >= 0.5, "tumor", "normal")
    return scored


def slide_scores_of(
    slides: list[tuple[str, str, bool, int, int]], wrong: set[str] = frozenset()
) -> pd.DataFrame:
    """A score per slide: high for tumor slides, low for the others, the other way round for ``wrong``."""
    rows = [
        {"item": s, "score": (0.9 if tumor else 0.1) if s not in wrong else (0.2 if tumor else 0.8)}
        | {"label_positive": tumor}
        for s, _, tumor, _, _ in slides
    ]
    return pd.DataFrame(rows)


ONE_PATIENT = [("A1", "P1", True, 150, 1), ("A2", "P1", False, 150, 1)]  # tile accuracy 0.993
FOUR_PATIENTS = [  # 6 slides of 4 patients, all called right (the demo's external cohort)
    ("B1", "Q1", True, 40, 0),
    ("B2", "Q1", False, 40, 0),
    ("B3", "Q2", True, 40, 0),
    ("B4", "Q3", False, 40, 0),
    ("B5", "Q4", True, 40, 0),
    ("B6", "Q4", False, 40, 0),
]
SEVEN_PATIENTS = [  # mixed: tile errors, a wrong slide, patients of one and two slides
    ("C1", "R1", True, 30, 3),
    ("C2", "R2", False, 30, 0),
    ("C3", "R3", True, 30, 8),
    ("C4", "R3", False, 30, 2),
    ("C5", "R4", False, 30, 0),
    ("C6", "R5", True, 30, 0),
    ("C7", "R6", False, 30, 5),
    ("C8", "R7", True, 30, 1),
]
CASES = {
    "one patient": (ONE_PATIENT, set()),
    "4 of 4 patients right": (FOUR_PATIENTS, set()),
    "mixed 7 patients": (SEVEN_PATIENTS, {"C4", "C8"}),
}


def evaluated(case: str) -> pd.DataFrame:
    slides, wrong = CASES[case]
    metrics, _ = evaluation_tables(
        tiles_of(slides),
        slide_scores_of(slides, wrong),
        classes=CLASSES,
        positive_class="tumor",
        threshold=0.5,
        settings=SETTINGS,
    )
    return metrics


def assert_honest(table: pd.DataFrame, metrics=METRICS) -> None:
    """No zero-width interval; every missing value or interval has its method and its reason."""
    for row in table.to_dict("records"):
        for name in [m for m in metrics if m in row]:
            value, low, high = row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"]
            method = row[f"{name}_ci_method"]
            assert isinstance(method, str) and method, (name, row)
            if np.isnan(low) or np.isnan(high):
                assert np.isnan(low) and np.isnan(high)
                assert method.startswith("not estimable"), (name, method)
                # a value or an interval missing says why
                reasons = [part for part in row["note"].split("; ") if label(name) in part.split(" not ")[0]]
                assert reasons and "not estimable: " in reasons[0], (name, row["note"])
            else:
                assert low < high, f"zero-width interval of {name}: {row}"
                assert low <= value <= high
                assert method == "clopper-pearson" or method.startswith(("patient bootstrap", "t across"))
    shown = with_intervals(table)
    text = " ".join(str(v) for v in shown.to_numpy().ravel())
    assert not re.search(r"(\d\.\d{3}) \(\1-\1\)", text), text


@pytest.mark.parametrize("case", list(CASES))
def test_no_interval_of_any_metrics_table_has_zero_width(case):
    metrics = evaluated(case)
    assert list(metrics["level"]) == ["tile", "slide", "patient"]
    assert (metrics["patients"] < 10).all()
    assert_honest(metrics)
    slides, _ = CASES[case]
    auc = class_aucs(tiles_of(slides), CLASSES, resamples=SETTINGS.bootstrap, seed=SETTINGS.seed)
    assert_honest(auc, ["auc"])


def test_one_patient_gets_no_bootstrap_interval_and_says_so():
    metrics = evaluated("one patient").set_index("level")
    tile = metrics.loc["tile"]
    assert tile["accuracy"] == pytest.approx(298 / 300, abs=1e-4)
    assert np.isnan(tile["accuracy_ci_low"]) and tile["accuracy_ci_method"] == "not estimable (1 patient)"
    assert tile["ci_method"] == "not estimable (1 patient)"
    shown = with_intervals(metrics.reset_index()).set_index("level")
    assert shown.at["tile", "accuracy"] == "0.993, not estimable (1 patient)"
    # one patient, called right: 1 of 1 with its exact interval, not 1.000 (1.000-1.000)
    patient = metrics.loc["patient"]
    assert (patient["accuracy"], patient["accuracy_ci_method"]) == (1.0, "clopper-pearson")
    assert shown.at["patient", "accuracy"] == "1.000 (0.025-1.000)"
    assert np.isnan(patient["auc"]) and (
        "AUC, balanced accuracy, specificity not estimable: every patient is tumor (1 tumor, 0 normal)"
        in patient["note"]
    )
    assert (
        "F1 interval not estimable: the bootstrap resamples patients and there is 1 patient"
        in (patient["note"])
    )
    assert metrics.loc["tile", "note"] == (
        "AUC, accuracy, balanced accuracy, F1, sensitivity, specificity, PPV, NPV intervals not "
        "estimable: the bootstrap resamples patients and there is 1 patient"
    )
    assert np.isnan(patient["specificity"]) and shown.at["patient", "specificity"] == "n/a"


def test_clopper_pearson_bounds_are_scipys():
    for k, n, low in ((4, 4, 0.3976), (6, 6, 0.5407), (1, 1, 0.025)):
        exact = binomtest(k, n).proportion_ci(0.95, method="exact")
        found = clopper_pearson(k, n)
        assert (found.low, found.high) == pytest.approx((exact.low, exact.high), abs=1e-12)
        assert found.low == pytest.approx(low, abs=1e-4) and found.high == 1.0
    assert np.isnan(clopper_pearson(0, 0, unit="slide").value)
    metrics = evaluated("4 of 4 patients right").set_index("level")
    for level, n in (("slide", 6), ("patient", 4)):
        exact = binomtest(n, n).proportion_ci(0.95, method="exact")
        row = metrics.loc[level]
        assert row["n"] == n and row["accuracy"] == 1.0 and row["accuracy_ci_method"] == "clopper-pearson"
        assert (row["accuracy_ci_low"], row["accuracy_ci_high"]) == pytest.approx(
            (exact.low, exact.high), abs=1e-4
        )
    one = evaluated("one patient").set_index("level").loc["patient"]
    assert one["accuracy_ci_low"] == pytest.approx(binomtest(1, 1).proportion_ci().low, abs=1e-4)


def test_sensitivity_specificity_ppv_npv_at_every_level():
    metrics = evaluated("mixed 7 patients").set_index("level")
    for name in ("sensitivity", "specificity", "ppv", "npv"):
        assert {name, f"{name}_ci_low", f"{name}_ci_high", f"{name}_ci_method"} <= set(metrics.columns)
        assert metrics[name].notna().all()
    slide = metrics.loc["slide"]  # C4 (normal) called tumor, C8 (tumor) called normal: 3/4 and 3/4
    assert (slide["sensitivity"], slide["specificity"]) == (0.75, 0.75)
    assert slide["sensitivity_ci_method"] == "clopper-pearson"
    exact = binomtest(3, 4).proportion_ci(method="exact")
    assert (slide["sensitivity_ci_low"], slide["sensitivity_ci_high"]) == pytest.approx(
        (exact.low, exact.high), abs=1e-4
    )
    assert metrics.loc["tile", "sensitivity_ci_method"] == "patient bootstrap (300)"


def test_cross_validation_tables_are_honest_too():
    scored = tiles_of(SEVEN_PATIENTS, split="oof")
    scored["fold"] = scored["patient_id"].map({"R1": 0, "R2": 0, "R3": 1, "R4": 1, "R5": 2, "R6": 2, "R7": 2})
    metrics = crossval_metrics(
        scored, classes=CLASSES, positive_class="tumor", threshold=0.5, how="mean", settings=SETTINGS
    )
    assert "ci_method" in metrics and "ci" not in metrics
    assert_honest(metrics)
    mean = metrics[metrics["fold"] == "mean"].set_index("level")
    assert mean.loc["tile", "accuracy_ci_method"] == "t across 3 folds"
    # fold 0's two patients are both normal at patient level... each fold's patient specificity varies
    assert set(mean["ci_method"]) and mean["note"].notna().all()


def test_the_report_pages_show_not_estimable_and_the_new_rows(tmp_path):
    from slidesnake.cross_site import cross_site_table
    from slidesnake.evaluation import ITEMS_TABLE
    from slidesnake.metrics import CLASS_AUC_TABLE, CONFUSION_TABLE, METRICS_TABLE
    from slidesnake.rules.report import dataset_page
    from slidesnake.splits import SPLITS_TABLE

    metrics = evaluated("4 of 4 patients right").assign(split="external")
    metrics.insert(0, "dataset", "site_b_by_model_a")
    METRICS_TABLE.write(metrics, tmp_path / "metrics.tsv")
    read = METRICS_TABLE.read(tmp_path / "metrics.tsv")
    site = cross_site_table(
        {"c": read}, [{"cohort": "c", "model": "site_a", "slides": "site_b", "stain": "none"}]
    )
    assert site.at[0, "auc_ci_method"] == "not estimable (4 patients)" and "AUC" in site.at[0, "note"]
    assert with_intervals(site).at[0, "auc"] == "1.000, not estimable (4 patients)"
    slides = tiles_of(FOUR_PATIENTS)
    auc = class_aucs(slides, CLASSES, resamples=SETTINGS.bootstrap, seed=SETTINGS.seed)
    CLASS_AUC_TABLE.write(auc, tmp_path / "class_auc.tsv")
    CONFUSION_TABLE.write(
        pd.DataFrame({"split": ["test"], "true": ["tumor"], "tumor": [1]}), tmp_path / "confusion.tsv"
    )
    shares = dict.fromkeys(("share_labelled_positive", "share_called_positive", "mean_probability"), 0.5)
    item = {"item": "B1", "split": "external", "patient_id": "P1", "entries": 40} | shares
    ITEMS_TABLE.write(pd.DataFrame([item]), tmp_path / "items.tsv")
    split = slides.drop_duplicates("item")[["item", "patient_id", "label", "split"]]
    SPLITS_TABLE.write(
        split.assign(content_hash="", group=range(len(split)), fold=-1), tmp_path / "split.tsv"
    )
    (tmp_path / "leakage.json").write_text('{"ok": true}')
    out = tmp_path / "page.html"
    dataset_page(
        name="site_b_by_model_a",
        model="site_a",
        metrics_tsv=str(tmp_path / "metrics.tsv"),
        items_tsv=str(tmp_path / "items.tsv"),
        class_auc_tsv=str(tmp_path / "class_auc.tsv"),
        confusion_tsv=str(tmp_path / "confusion.tsv"),
        split_tsv=str(tmp_path / "split.tsv"),
        leakage_json=str(tmp_path / "leakage.json"),
        crossval_tsvs=[],
        out_html=str(out),
    )
    html = out.read_text()
    for text in ("sensitivity", "specificity", "ppv", "npv", "ci_method", "note", "clopper-pearson"):
        assert f">{text}<" in html or text in html
    assert "1.000, not estimable (4 patients)" in html and "1.000 (0.541-1.000)" in html
    assert "1.000 (1.000-1.000)" not in html
