"""Attention MIL on synthetic bags of features with a planted signal: it learns the signal and attends to
the planted tiles; padding never changes a bag's output; metrics equal scikit-learn's; the attention check
and the patient label tables say what they should."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from conftest import ROOT, validated_config
from slidesnake.errors import StudyError
from slidesnake.mil.bags import Bag, padded, sampled_batch
from slidesnake.mil.crossval import crossvalidate
from slidesnake.mil.evaluation import attention_check, bag_probabilities, mil_metrics
from slidesnake.mil.network import build_network, predict_bags, tile_statistics
from slidesnake.mil.settings import MILSettings
from slidesnake.patient_labels import with_patient_labels
from slidesnake.regimes import check_models

DIM = 16


def _settings(**changes) -> MILSettings:
    section = {**validated_config()["mil"], "hidden": 32, "attention": 16, "epochs": 40, "patience": 8}
    section["min_epochs"] = 25
    section |= {"learning_rate": 0.002, "weight_decay": 0.0001, "folds": 3, "seeds": 1} | changes
    return MILSettings.from_config(section)


def _bags(n: int, seed: int) -> tuple[list[Bag], list[np.ndarray]]:
    """Bags of 30-90 noise tiles; in positive bags (every other one) 10% of the tiles carry a shift."""
    rng = np.random.default_rng(seed)
    bags, planted = [], []
    for i in range(n):
        count = int(rng.integers(30, 90))
        features = rng.normal(0, 1, (count, DIM)).astype(np.float32)
        marked = np.zeros(count, bool)
        if i % 2:
            marked[rng.choice(count, max(3, count // 10), replace=False)] = True
            features[marked, :3] += 2.5
        bags.append(
            Bag(
                name=f"S{i:02d}",
                patient_id=f"P{i:02d}",
                label="yes" if i % 2 else "no",
                features=features,
                slide_ids=np.full(count, f"S{i:02d}", dtype=object),
                corners=np.stack([np.arange(count) * 64, np.zeros(count, np.int64)], axis=1),
            )
        )
        planted.append(marked)
    return bags, planted


@pytest.fixture(scope="module")
def crossvalidated():
    bags, planted = _bags(30, seed=3)
    folds = {b.name: k % 3 for k, b in enumerate(bags)}
    predictions, attention, history = crossvalidate(bags, folds, classes=["no", "yes"], settings=_settings())
    return bags, planted, predictions, attention, history


def test_attention_mil_learns_a_planted_signal_and_attends_to_it(crossvalidated) -> None:
    bags, planted, predictions, attention, history = crossvalidated
    assert set(predictions["split"]) == {"oof"} and len(predictions) == 2 * len(bags)  # 2 poolings x 1 seed
    scored = bag_probabilities(predictions, "yes")
    mil = scored[scored["pooling"] == "attention"]
    assert roc_auc_score(mil["label"] == "yes", mil["score"]) >= 0.95
    aucs = []
    for bag, marked in zip(bags, planted, strict=True):
        if marked.any():
            weights = attention[attention["bag"] == bag.name].sort_values("x0")["attention"].to_numpy()
            assert weights.sum() == pytest.approx(1.0, abs=1e-5)
            aucs.append(roc_auc_score(marked, weights))
    assert np.mean(aucs) >= 0.9  # attention on the planted tiles
    assert set(history["pooling"]) == {"attention", "mean"} and history["best"].any()


def test_padding_and_batching_do_not_change_a_bag() -> None:
    bags, _ = _bags(4, seed=5)
    statistics = tile_statistics(*padded(bags))
    model = build_network(statistics, 2, _settings(), "attention")
    alone_p, alone_a = predict_bags(model, *padded(bags[:1]))
    batch_p, batch_a = predict_bags(model, *padded(bags, length=200))
    np.testing.assert_allclose(alone_p[0], batch_p[0], atol=1e-5)
    np.testing.assert_allclose(alone_a[0], batch_a[0, : len(bags[0])], atol=1e-5)
    assert (batch_a[0, len(bags[0]) :] == 0).all()  # padding gets no attention at all
    mean_model = build_network(statistics, 2, _settings(), "mean")
    p1, a1 = predict_bags(mean_model, *padded(bags[1:2]))
    p2, a2 = predict_bags(mean_model, *padded(bags, length=200))
    np.testing.assert_allclose(p1[0], p2[1], atol=1e-5)
    np.testing.assert_allclose(a1[0], 1 / len(bags[1]), atol=1e-7)


def test_a_training_batch_keeps_at_most_the_tiles_per_bag_of_its_own_bags() -> None:
    bags, _ = _bags(3, seed=1)
    features, mask = padded(bags)
    batch, batch_mask = sampled_batch(features, mask, np.array([2, 0]), 20, np.random.default_rng(0))
    assert batch.shape == (2, 20, DIM) and (batch_mask == 1).all()
    for row, bag in zip(batch, (bags[2], bags[0]), strict=True):  # each tile is one of its bag's, once
        matches = (row[:, None, :] == bag.features[None, :, :]).all(axis=2)
        assert (matches.sum(axis=1) == 1).all() and (matches.sum(axis=0) <= 1).all()
    short = dataclasses.replace(bags[0], name="short", features=bags[0].features[:7])
    features, mask = padded([short, bags[1]])
    batch, batch_mask = sampled_batch(features, mask, np.array([0, 1]), 20, np.random.default_rng(0))
    assert batch_mask.sum(axis=1).tolist() == [7, 20]  # a short bag whole, padded
    np.testing.assert_array_equal(batch[0, :7], short.features)
    with pytest.raises(ValueError, match="shorter than the longest bag"):
        padded(bags, length=5)


def test_standardized_features_learn_where_raw_small_features_do_not_move() -> None:
    """Encoder features are often tiny (pooled ReLU activations): the network standardizes them itself."""
    bags, _ = _bags(4, seed=2)
    small = [dataclasses.replace(b, features=0.01 * b.features + 0.3) for b in bags]
    features, mask = padded(small)
    mean, variance = tile_statistics(features, mask)
    tiles = np.concatenate([b.features for b in small]).astype(np.float64)
    np.testing.assert_allclose(mean, tiles.mean(axis=0), rtol=1e-6)  # real tiles only, not the padding
    np.testing.assert_allclose(variance, tiles.var(axis=0), rtol=1e-6)
    constant = features.copy()
    constant[..., 0] = 5.0
    assert tile_statistics(constant, mask)[1][0] == 1.0  # a constant feature is left unscaled
    model = build_network((mean, variance), 2, _settings(), "attention")
    standardized = model.get_layer("standardized")(features[:1, :10])
    assert float(np.std(standardized)) == pytest.approx(1.0, abs=0.3)


def test_metrics_equal_scikit_learn_and_report_the_seed_spread(crossvalidated) -> None:
    _, _, predictions, _, _ = crossvalidated
    two_seeds = pd.concat([predictions, predictions.assign(seed=2, p_yes=predictions["p_yes"] ** 2)])
    table = mil_metrics(two_seeds, bag="slide", positive_class="yes", threshold=0.5, resamples=200, seed=1)
    assert set(zip(table["pooling"], table["level"], strict=True)) == {
        ("attention", "slide"), ("attention", "patient"), ("mean", "slide"), ("mean", "patient"),
    }  # fmt: skip
    scored = bag_probabilities(two_seeds, "yes")
    for pooling in ("attention", "mean"):
        mine = scored[scored["pooling"] == pooling]
        row = table[(table["pooling"] == pooling) & (table["level"] == "slide")].iloc[0]
        assert row["auc"] == pytest.approx(roc_auc_score(mine["label"] == "yes", mine["score"]), abs=1e-4)
        assert row["auc_ci_low"] < row["auc"] or row["auc"] == 1.0
        per_seed = [
            roc_auc_score(part["label"] == "yes", part["p_yes"])
            for _, part in two_seeds[two_seeds["pooling"] == pooling].groupby("seed")
        ]
        assert row["seed_auc_min"] == pytest.approx(min(per_seed), abs=1e-4)
        assert row["seed_auc_max"] == pytest.approx(max(per_seed), abs=1e-4)
        assert row["seeds"] == 2


def test_attention_check_per_slide_and_over_slides() -> None:
    rows = []
    for k, (n_in, good) in enumerate([(5, True), (4, True), (6, False), (3, True)]):
        inside = np.r_[np.ones(n_in, bool), np.zeros(10, bool)]
        weights = np.where(inside, 0.9, 0.1) if good else np.where(inside, 0.1, 0.9)
        rows.append(pd.DataFrame({"slide_id": f"S{k}", "attention": weights, "inside": inside}))
    rows.append(pd.DataFrame({"slide_id": "none", "attention": [0.5, 0.5], "inside": [False, False]}))
    table = pd.concat(rows, ignore_index=True)
    per_slide, summary = attention_check(table, table["inside"], resamples=500, seed=0)
    assert per_slide.set_index("slide_id")["auc"].to_dict() == pytest.approx(
        {"S0": 1.0, "S1": 1.0, "S2": 0.0, "S3": 1.0, "none": np.nan}, nan_ok=True
    )
    assert summary["slides"] == 4 and summary["mean_auc"] == 0.75
    assert "not estimable" in summary["note"]  # two distinct values: no interval from a degenerate bootstrap


def _patient_config(table: Path) -> dict:
    config = validated_config()
    config["datasets"]["site_c"]["labels"] = {
        "source": "patients",
        "classes": ["classic", "vesicular"],
        "table": str(table),
        "column": "subtype",
    }
    return config


def test_patient_tables_label_every_slide_or_stop_naming_the_row(tmp_path: Path) -> None:
    sheet = pd.DataFrame(
        {
            "slide_id": ["C1", "C2", "C3", "A1"],
            "patient_id": ["007", "007", "1e3", "PA"],
            "dataset": ["site_c", "site_c", "site_c", "site_a"],
            "path": ["c1.svs", "c2.svs", "c3.svs", "a1.svs"],
        }
    )
    table = tmp_path / "patients.csv"
    table.write_text(
        "\ufeffpatient_id,subtype\r\n007,vesicular\r\n1e3,classic\r\n", encoding="utf-8"
    )  # Excel
    labelled = with_patient_labels(sheet, _patient_config(table))
    assert labelled["label"].iloc[:3].tolist() == ["vesicular", "vesicular", "classic"]
    assert pd.isna(labelled["label"].iloc[3])  # site_a's slide: not from the table
    table.write_text(
        "patient_id,subtype\n007,vesicular\n1e3,classic\n042,classic\nNA,typo\n", encoding="utf-8"
    )
    with pytest.raises(StudyError) as stop:
        with_patient_labels(sheet, _patient_config(table))
    message = str(stop.value)
    assert "patients not in the sheet's dataset 'site_c': line 4 ('042'), line 5 ('NA')" in message
    assert "column 'subtype' is not one of ['classic', 'vesicular']: line 5 ('typo')" in message
    table.write_text("patient_id,subtype\n007,vesicular\n", encoding="utf-8")
    with pytest.raises(StudyError, match=r"no row for the patients of 'C3' \(line 4\)"):
        with_patient_labels(sheet, _patient_config(table))


def test_a_cohort_of_a_mil_model_is_refused_before_any_job() -> None:
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    check_models(validated_config(raw), ensembles=[], base_dir=ROOT)  # the demo's own config passes
    raw["cohorts"]["site_b_by_model_c"] = {"model": "site_c", "slides": "site_b"}
    with pytest.raises(StudyError, match="cohorts: site_b_by_model_c: model: 'site_c' is a MIL dataset"):
        check_models(validated_config(raw), ensembles=[], base_dir=ROOT)
