# The study (validated config and slide sheet) and the input functions every rule shares.
import re
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir).parent / "scripts"))

from slidesnake.settings import model_settings  # noqa: E402
from slidesnake.config import validate_config  # noqa: E402
from slidesnake.study import check_sheet, empty_sheet, read_sheet  # noqa: E402

validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
sheet = read_sheet(config["slides"]) if config["slides"] else empty_sheet()
validate(sheet, "../schemas/slides.schema.yaml")
check_sheet(sheet, config, config["slides"] or "slide sheet")
sheet = sheet.set_index("slide_id", drop=False)

SLIDES = sheet["slide_id"].tolist()
PATCH_DATASETS = sorted(
    d for d, c in config["datasets"].items() if c["labels"]["source"] == "patches"
)
SLIDE_DATASETS = sorted(set(config["datasets"]) - set(PATCH_DATASETS))
DATASETS = SLIDE_DATASETS + PATCH_DATASETS


def alternatives(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def sheet_value(slide, column):
    """One cell of the sheet, None when the column or the value is missing."""
    if column not in sheet or pd.isna(sheet.at[slide, column]):
        return None
    return sheet.at[slide, column]


def slide_file(wildcards):
    return sheet.at[wildcards.slide, "path"]


def dataset_of(wildcards):
    return sheet.at[wildcards.slide, "dataset"]


def dataset_config(wildcards):
    """The config of the rule's dataset (its wildcard, or the dataset of its slide)."""
    return config["datasets"][wildcards.get("dataset") or dataset_of(wildcards)]


def annotation_files(wildcards):
    """The slide's annotation file, when its dataset labels from annotations."""
    path = sheet_value(wildcards.slide, "annotations")
    return (
        [path]
        if dataset_config(wildcards)["labels"]["source"] == "annotations" and path
        else []
    )


def slides_of(dataset):
    return sheet.loc[sheet["dataset"] == dataset, "slide_id"].tolist()


def per_slide(pattern):
    """Input function: ``pattern`` for every slide of the dataset wildcard."""
    return lambda wildcards: expand(pattern, slide=slides_of(wildcards.dataset))


def model_env(wildcards):
    """The conda env file of the rule's dataset (used with --sdm conda)."""
    return f"../../envs/{dataset_config(wildcards)['env']}.yaml"


def image_size(wildcards):
    """Side images of a patch-folder dataset are resized to; None for slides (tiles keep their size)."""
    return dataset_config(wildcards).get("patches", {}).get("image_size")


def prediction_tables(wildcards):
    """What evaluate scores: one table per slide, or the one table of a patch-folder dataset's images."""
    if wildcards.dataset in PATCH_DATASETS:
        return [f"results/predictions/{wildcards.dataset}/images.tsv"]
    return expand("results/predictions/{slide}.tsv", slide=slides_of(wildcards.dataset))
