# Sheet loading, validation and input functions shared by every rule.
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(workflow.basedir).parent / "scripts"))

from slidesnake.study import check_sheet, empty_sheet, model_config, read_sheet  # noqa: E402

SCRIPTS = Path(workflow.basedir).parent / "scripts"

sheet = read_sheet(config["slides"]) if config.get("slides") else empty_sheet()
validate(sheet, "../schemas/slides.schema.yaml")
check_sheet(sheet, config, config.get("slides", "slide sheet"))
sheet = sheet.set_index("slide_id", drop=False)

SLIDES = sheet["slide_id"].tolist()
PATCH_DATASETS = sorted(d for d, c in config["datasets"].items() if c["labels"]["source"] == "patches")
SLIDE_DATASETS = sorted(set(config["datasets"]) - set(PATCH_DATASETS))
DATASETS = SLIDE_DATASETS + PATCH_DATASETS
DEMO_DIR = config.get("demo_dir")


def alternatives(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    slide=alternatives(SLIDES),
    dataset=alternatives(DATASETS),


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


def is_patch_dataset(dataset):
    return dataset in PATCH_DATASETS


def input_pixels(dataset):
    """Side in pixels of what the dataset's model takes: the tile size, or a patch dataset's image size."""
    if is_patch_dataset(dataset):
        return config["datasets"][dataset]["patches"]["image_size"]
    return config["tiling"]["tile_size"]


def positive_class(wildcards):
    return config["datasets"][wildcards.dataset]["positive_class"]


def train_inputs(wildcards):
    """The split table, plus the label tables and tile stores of a slide dataset."""
    inputs = {"splits": f"results/splits/{wildcards.dataset}.tsv"}
    if not is_patch_dataset(wildcards.dataset):
        slides = slides_of(wildcards.dataset)
        inputs["labels"] = expand("results/labels/{slide}.tsv", slide=slides)
        inputs["stores"] = expand("results/tiles/{slide}.zarr", slide=slides)
    return inputs


def evaluate_inputs(wildcards):
    """Predictions and labels of a dataset: per slide, or the one table of a patch dataset."""
    dataset = wildcards.dataset
    inputs = {"history": f"results/models/{dataset}/history.tsv"}
    if is_patch_dataset(dataset):
        inputs["patches"] = f"results/predictions/{dataset}/images.tsv"
    else:
        slides = slides_of(dataset)
        inputs["splits"] = f"results/splits/{dataset}.tsv"
        inputs["labels"] = expand("results/labels/{slide}.tsv", slide=slides)
        inputs["tiles"] = expand("results/predictions/{slide}.tsv", slide=slides)
    return inputs
