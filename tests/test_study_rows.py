"""What each dataset and cohort of a study is, and what the summary says of them, from the config and the
sheet alone (no Snakemake): the demo study's three sites, its regimes and cross-site cohorts."""

from __future__ import annotations

import pandas as pd

from conftest import ROOT, validated_config
from slidesnake.report.study_rows import cohort_rows, cross_site_rows, dataset_rows, regime_rows
from slidesnake.roles import slides_of, study_roles
from slidesnake.study import read_sheet


def _demo() -> tuple[dict, pd.DataFrame]:
    return validated_config(), read_sheet(ROOT / "config" / "slides.tsv")


def test_roles_of_the_demo_study() -> None:
    config, _ = _demo()
    roles = study_roles(config)
    assert roles.datasets == roles.slide_datasets == ("site_a", "site_b", "site_c")
    assert roles.mil_datasets == ("site_c",) and roles.patch_datasets == roles.pretrained_datasets == ()
    assert roles.cross_site_cohorts == roles.external_cohorts == roles.labelled_cohorts
    assert roles.cross_site_cohorts == (
        "site_b_by_model_a",
        "site_b_by_model_a_hed",
        "site_b_by_model_a_macenko",
    )
    assert roles.variant_cohorts == ("site_b_by_model_a_hed", "site_b_by_model_a_macenko")
    assert roles.crossval_datasets == roles.ensemble_datasets == ()  # the demo has no folds
    folded = study_roles(validated_config({**config, "splits": {**config["splits"], "folds": 3}}))
    assert folded.crossval_datasets == ("site_a", "site_b") == folded.ensemble_datasets  # not the MIL one
    refit = {**config["splits"], "folds": 3, "deploy": "refit"}
    assert study_roles(validated_config({**config, "splits": refit})).ensemble_datasets == ()


def test_summary_rows_of_the_demo_study() -> None:
    config, sheet = _demo()
    roles = study_roles(config)
    rows = {row["dataset"]: row for row in dataset_rows(config, sheet, roles)}
    assert [(rows[d]["slides"], rows[d]["patients"]) for d in roles.datasets] == [
        (len(slides_of(config, sheet, d)), sheet.loc[sheet["dataset"] == d, "patient_id"].nunique())
        for d in roles.datasets
    ]
    assert rows["site_a"]["model"].endswith(" from scratch, " + f"{config['model']['epochs']} epochs")
    assert rows["site_c"]["model"] == (
        "attention MIL and mean pooling on encoder demo_texture, slide bags, 4-fold cross-validation, 3 seeds"
    )
    assert (
        rows["site_c"]["kind"] == "slides (slide labels)" and rows["site_c"]["positive_class"] == "vesicular"
    )
    cohorts = {row["cohort"]: row for row in cohort_rows(config, sheet, roles)}
    assert cohorts["site_b_by_model_a_macenko"]["model"] == "site_a (variant)"
    assert cohorts["site_b_by_model_a"]["count"] == len(slides_of(config, sheet, "site_b"))
    assert cohorts["site_b_by_model_a"]["slides"] == "those of dataset site_b"
    stains = {row["cohort"]: row["stain"] for row in cross_site_rows(config, roles)}
    assert (
        stains["site_b_by_model_a"] != stains["site_b_by_model_a_macenko"] != stains["site_b_by_model_a_hed"]
    )
    assert {row["model"] for row in cross_site_rows(config, roles)} == {"site_a"}


def test_regime_rows_name_each_model_and_its_files() -> None:
    config, _ = _demo()
    rows = regime_rows(config)
    assert [(r["dataset"], r["regime"]) for r in rows] == [
        ("site_b", "model"), ("site_b", "fine_tuned_from_site_a"), ("site_b", "probe_on_site_a"),
    ]  # fmt: skip
    assert rows[0]["model_path"] == "results/models/site_b/model.keras"
    assert rows[2]["model_json"] == "results/models/site_b/regimes/probe_on_site_a/config.json"
    assert rows[2]["training"] == "linear probe (logistic) on encoder site_a_model"
    assert rows[1]["training"].endswith("fine-tuned from site_a")
