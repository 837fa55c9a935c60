# Sheet loading, validation and input functions shared by every rule.
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(workflow.basedir).parent / "scripts"))

from slidesnake.study import check_sheet, model_config, read_sheet  # noqa: E402

SCRIPTS = Path(workflow.basedir).parent / "scripts"

sheet = read_sheet(config["slides"])
validate(sheet, "../schemas/slides.schema.yaml")
check_sheet(sheet, config, config["slides"])
sheet = sheet.set_index("slide_id", drop=False)

SLIDES = sheet["slide_id"].tolist()
DATASETS = sorted(sheet["dataset"].unique())
DEMO_DIR = config.get("demo_dir")

wildcard_constraints:
    slide="|".join(map(str, SLIDES)),
    dataset="|".join(map(str, DATASETS)),


def sheet_value(slide, column):
    """One cell of the sheet, None when the column or the value is missing."""
    if column not in sheet or pd.isna(sheet.at[slide, column]):
        return None
    return sheet.at[slide, column]


def slide_file(wildcards):
    return sheet.at[wildcards.slide, "path"]


def annotation_files(wildcards):
    """The slide's annotation file, when its dataset labels from annotations."""
    labels = config["datasets"][sheet.at[wildcards.slide, "dataset"]]["labels"]
    path = sheet_value(wildcards.slide, "annotations")
    return [path] if labels["source"] == "annotations" and path else []


def slides_of(dataset):
    return sheet.loc[sheet["dataset"] == dataset, "slide_id"].tolist()


def dataset_of(wildcards):
    return sheet.at[wildcards.slide, "dataset"]


def per_slide(pattern):
    """Input function: ``pattern`` for every slide of the dataset wildcard."""
    return lambda wildcards: expand(pattern, slide=slides_of(wildcards.dataset))


def by_slide(pattern, dataset):
    """{slide id: path} for every slide of a dataset."""
    return {slide: pattern.format(slide=slide) for slide in slides_of(dataset)}


def model_env(wildcards):
    """The conda env file of the rule's dataset (used with --sdm conda)."""
    dataset = wildcards.get("dataset") or dataset_of(wildcards)
    return f"../../envs/{config['datasets'][dataset].get('env', 'tensorflow-cpu')}.yaml"


def labels_of(dataset):
    return config["datasets"][dataset]["labels"]
