# The study (validated config, slide sheet, cohorts) and the input functions every rule shares.
import functools
import re
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir).parent / "scripts"))

from slidesnake.cohorts import (  # noqa: E402
    check_cohorts,
    cohort_labels,
    dataset_geometry,
    home_geometry,
    model_of,
    positive_class,
)
from slidesnake.cluster import check_cluster, gpus_of  # noqa: E402
from slidesnake.codehash import code_version as script_version  # noqa: E402
from slidesnake.errors import ClusterError  # noqa: E402
from slidesnake.features.checks import check_study_encoders  # noqa: E402
from slidesnake.features.encoders import encoders_from_config  # noqa: E402
from slidesnake.config import validate_config  # noqa: E402
from slidesnake.patient_labels import with_patient_labels  # noqa: E402
from slidesnake.provenance import log_run, run_state  # noqa: E402
from slidesnake.regimes import (
    check_models,
    regime_settings,
)  # noqa: E402
from slidesnake.mil.settings import mil_section  # noqa: E402
from slidesnake.report.study_rows import (
    cohort_rows,
    cross_site_rows,
    dataset_rows,
    regime_rows,
)  # noqa: E402
from slidesnake.roles import slides_of as study_slides  # noqa: E402
from slidesnake.roles import study_roles  # noqa: E402
from slidesnake.settings import model_settings  # noqa: E402
from slidesnake.study import (
    SLIDE_ID,
    check_sheet,
    empty_sheet,
    read_sheet,
)  # noqa: E402

validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
sheet = read_sheet(config["slides"]) if config["slides"] else empty_sheet()
sheet = with_patient_labels(sheet, config)  # datasets labelled from a patient table
check_sheet(
    sheet, config, config["slides"] or "slide sheet"
)  # one line per problem, before validate()
validate(sheet, "../schemas/slides.schema.yaml")
sheet = sheet.set_index("slide_id", drop=False)
check_cohorts(config, sheet)

SLIDES = sheet["slide_id"].tolist()
# the sheet's cells as plain dicts, column -> slide -> value (None where empty): input functions run
# once or more per job, and a dict lookup is a hundred times cheaper than a DataFrame's
CELLS = {
    column: {
        slide: None if pd.isna(value) else value for slide, value in values.items()
    }
    for column, values in sheet.items()
}
# what each dataset and cohort is (patch or slide dataset, MIL, cross-validated, cross-site cohort...)
ROLES = study_roles(config)
PATCH_DATASETS = list(ROLES.patch_datasets)
SLIDE_DATASETS = list(ROLES.slide_datasets)
DATASETS = list(ROLES.datasets)
COHORTS = list(ROLES.cohorts)
# cohorts that predict another dataset's slides (external validation); the others have sheet rows
EXTERNAL_COHORTS = list(ROLES.external_cohorts)
LABELLED_COHORTS = list(ROLES.labelled_cohorts)
# everything that has an entries table and a report: datasets and labelled cohorts
EVALUATED = DATASETS + LABELLED_COHORTS
# the sheet's datasets and cohorts whose slides are labelled (one label_tiles job each)
LABELLED_HOMES = sorted(
    home
    for home in set(sheet["dataset"])
    if home in SLIDE_DATASETS or home in LABELLED_COHORTS
)
# cross-validation: k fold models per dataset; the deployed model is their ensemble or one refit
FOLDS = ROLES.folds
# classifiers from outside (model kind pretrained): installed, not trained; every patient is a test one
PRETRAINED_DATASETS = list(ROLES.pretrained_datasets)
# slide-level learning (model kind mil): cross-validated on stored features, no tile model or maps
MIL_DATASETS = list(ROLES.mil_datasets)
CROSSVAL_DATASETS = list(ROLES.crossval_datasets)
ENSEMBLE_DATASETS = list(ROLES.ensemble_datasets)
TRAINED_DATASETS = [d for d in DATASETS if d not in ENSEMBLE_DATASETS + MIL_DATASETS]
# datasets with a tile model (maps, tile evaluation), and the slides it maps
TILE_DATASETS = [d for d in DATASETS if d not in MIL_DATASETS]
MAPPED_SLIDES = [
    s for s in sheet["slide_id"] if sheet.loc[s, "dataset"] not in MIL_DATASETS
]
# evaluated from tile predictions (a MIL dataset's metrics and page come from mil_report)
TILE_EVALUATED = [n for n in EVALUATED if n not in MIL_DATASETS]
# cohorts predicted by a variant of their dataset's model (cohort variant: settings changed, e.g. stain)
VARIANT_COHORTS = list(ROLES.variant_cohorts)
# one dataset's slides through another dataset's model: the cross-site table, by stain setting
CROSS_SITE_COHORTS = list(ROLES.cross_site_cohorts)
# their models, each with its own test metrics as the in-site reference
CROSS_SITE_MODELS = sorted({config["cohorts"][c]["model"] for c in CROSS_SITE_COHORTS})


# tile encoders (config encoders): files, digests, field of view and licence checked before any job
ENCODER_SPECS = encoders_from_config(config["encoders"])
ENCODERS = sorted(ENCODER_SPECS)
# once, in the main process (a cluster job's snakemake was checked before it was submitted): the
# digests read every weights file whole, and ONNX models are opened
if ENCODER_SPECS and workflow.is_main_process:
    check_study_encoders(
        ENCODER_SPECS,
        geometries={
            home: (
                home_geometry(config, home).tile_size,
                home_geometry(config, home).mpp,
            )
            for home in sorted(set(sheet["dataset"]))
        }
        | {  # patch datasets of known MPP (images of unknown MPP are resized to the encoder's input)
            dataset: (
                config["datasets"][dataset]["patches"]["image_size"],
                config["datasets"][dataset]["patches"]["mpp"],
            )
            for dataset in PATCH_DATASETS
            if config["datasets"][dataset]["patches"]["mpp"]
        },
        datasets=DATASETS,
        licence_policy=config["licence_policy"],
        base_dir=Path.cwd(),
    )


# model kinds (network or probe), their encoders and init models, and the regimes, before any job
check_models(
    config,
    ensembles=ENSEMBLE_DATASETS,
    base_dir=Path.cwd(),
)
# other ways to train a dataset's model (datasets: <name>: regimes), compared on its test split
REGIMES = {
    d: sorted(c["regimes"]) for d, c in config["datasets"].items() if c["regimes"]
}
REGIME_NAMES = sorted({r for names in REGIMES.values() for r in names})


def split_settings(name):
    """Config splits for a dataset: a pretrained classifier's patients are all test ones, in one fold; a
    MIL dataset's are all in mil: folds (every patient out of fold once)."""
    if name in MIL_DATASETS:
        return {
            **config["splits"],
            "fractions": {"train": 1.0, "val": 0.0, "test": 0.0},
            "folds": mil_section(config, name)["folds"],
        }
    if name not in PRETRAINED_DATASETS:
        return config["splits"]
    return {
        **config["splits"],
        "fractions": {"train": 0.0, "val": 0.0, "test": 1.0},
        "folds": 1,
    }


def encoder_users():
    """Encoder -> the datasets whose model or regimes use it, and the kinds of those models."""
    users = {}
    for dataset in DATASETS:
        for settings in [model_settings(config, dataset)] + [
            regime_settings(config, dataset, regime)
            for regime in REGIMES.get(dataset, [])
        ]:
            if settings.encoder:
                datasets, kinds = users.setdefault(settings.encoder, (set(), set()))
                datasets.add(dataset)
                kinds.add(settings.kind)
    return users


def feature_stores():
    """The feature stores the default target asks for; every slide's (and patch dataset's) for each encoder, not
    for those only naming a pretrained classifier; with feature_slides 'used', a used encoder's only
    for the datasets that use it (their models pull them in).
    """
    stores = []
    for encoder in ENCODERS:
        datasets, kinds = encoder_users().get(encoder, (set(), {"probe"}))
        if kinds == {"pretrained"}:
            continue
        names = SLIDES + PATCH_DATASETS
        if config["feature_slides"] == "used" and datasets:
            names = [
                name
                for dataset in sorted(datasets)
                for name in (
                    [dataset] if dataset in PATCH_DATASETS else slides_of(dataset)
                )
            ]
        # a patch dataset's store (rule features_patches) has the path a slide's has
        stores += expand(rules.features.output.features, encoder=encoder, slide=names)
    return stores


def training_settings(wildcards):
    """Settings of the model being trained (a dataset's, a cohort's variant or a regime's)."""
    if hasattr(wildcards, "cohort"):
        return cohort_settings(wildcards.cohort)
    if hasattr(wildcards, "regime"):
        return regime_settings(config, wildcards.dataset, wildcards.regime)
    return model_settings(config, wildcards.dataset)


def probe_features(wildcards):
    """A probe's inputs: its encoder's feature stores of the dataset's slides, or of its images (a patch
    dataset); none for a network.
    """
    settings = training_settings(wildcards)
    if settings.kind != "probe":
        return []
    if wildcards.dataset in PATCH_DATASETS:
        return expand(
            rules.features_patches.output.features,
            encoder=settings.encoder,
            dataset=wildcards.dataset,
        )
    return expand(
        rules.features.output.features,
        encoder=settings.encoder,
        slide=slides_of(wildcards.dataset),
    )


def model_encoder(settings):
    """What config.json records of a probe's encoder or a pretrained classifier (None for a network)."""
    if settings.kind == "cnn":
        return None
    files = encoder_model(settings.encoder)
    return {
        "name": settings.encoder,
        "settings": config["encoders"][settings.encoder],
        "model_file": files[0] if files else None,
    }


def init_model(wildcards):
    """The model a network starts from (config model: init): a dataset's model or a .keras file."""
    init = training_settings(wildcards).init
    if init is None:
        return []
    return (
        expand(rules.train.output.keras, dataset=init)
        if init in config["datasets"]
        else [init]
    )


def predicting_settings(wildcards):
    """The settings of the model that predicts the rule's slides (or cohort)."""
    return predicting_settings_of(name_of(wildcards))


@functools.cache
def predicting_settings_of(name):
    """The settings of the model that predicts a dataset's or cohort's slides, made once per name (every
    slide's predict job asks: 10,000 slides would build them 10,000 times)."""
    if name in VARIANT_COHORTS:
        return cohort_settings(name)
    return model_settings(config, model_of(config, name))


def encoder_inputs(settings):
    """The files a probe's encoder (weights, or its dataset's model) or a pretrained classifier loads."""
    if settings.kind == "cnn":
        return []
    return encoder_files(settings.encoder) + encoder_model(settings.encoder)


def regime_encoder_files():
    """The files the probes of the regimes table load."""
    files = []
    for dataset, names in REGIMES.items():
        files += encoder_inputs(model_settings(config, dataset))
        for regime in names:
            files += encoder_inputs(regime_settings(config, dataset, regime))
    return sorted(set(files))


def encoder_files(encoder):
    """The local files of an encoder (inputs of its features jobs: a new weights file re-extracts)."""
    return list(ENCODER_SPECS[encoder].local_files().values())


def encoder_model(encoder):
    """The trained model an encoder of source 'dataset' is cut from; none for the other sources."""
    spec = ENCODER_SPECS[encoder]
    return (
        expand(rules.train.output.keras, dataset=spec.dataset)
        if spec.source == "dataset"
        else []
    )


SCRIPTS = Path(workflow.basedir).parent / "scripts"


def code_version(rule):
    """Checksum of a rule's script and the library code it runs: a param, so code changes rerun it."""
    return script_version(SCRIPTS / f"{rule}.py")


def alternatives(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!)"


def sheet_value(slide, column):
    """One cell of the sheet, None when the column or the value is missing."""
    return CELLS[column][slide] if column in CELLS else None


def slide_file(wildcards):
    return CELLS["path"][wildcards.slide]


def slide_file_size(wildcards):
    """The slide file's size (None before the demo writes it): with ancient() on the file, a touched or
    re-copied slide is not read again, a replaced one of another size is (see config/README.md).
    """
    path = Path(slide_file(wildcards))
    return path.stat().st_size if path.is_file() else None


def home_of(wildcards):
    """The dataset or cohort whose sheet rows hold the rule's slide."""
    return CELLS["dataset"][wildcards.slide]


def name_of(wildcards):
    """The dataset or cohort of the rule: its wildcard, or the home of its slide."""
    for key in ("dataset", "cohort", "name"):
        if hasattr(wildcards, key):
            return getattr(wildcards, key)
    return home_of(wildcards)


def labels_of(name):
    """The labels of a dataset or cohort (None for an unlabelled cohort); patient labels are slide labels
    once the sheet carries them (with_patient_labels)."""
    labels = (
        config["datasets"][name]["labels"]
        if name in config["datasets"]
        else cohort_labels(config, name)
    )
    if labels is None or labels["source"] != "patients":
        return labels
    return {
        **{k: v for k, v in labels.items() if k not in ("table", "column")},
        "source": "slide",
    }


def slides_of(name):
    """The slides of a dataset or cohort (a cohort reusing a dataset's slides: those)."""
    return study_slides(config, sheet, name)


def sites_of(dataset):
    """The site of each slide of a dataset (sheet column ``splits: site_column``), for site-preserving
    folds; None without folds or without the setting.
    """
    column = config["splits"]["site_column"]
    if FOLDS < 2 or not column:
        return None
    return sheet.loc[slides_of(dataset), column].astype(str).tolist()


def fold_files(output):
    """Input function: the ``output`` (a key of rule train_fold's) of each of the dataset's fold models."""
    return lambda wildcards: expand(
        getattr(rules.train_fold.output, output),
        dataset=wildcards.dataset,
        fold=range(FOLDS),
    )


def label_folder(name):
    """The folder of tile labels of a dataset's or labelled cohort's slides (rule label_tiles; a cohort
    reusing a dataset's slides: that dataset's); none for a patch dataset or an unlabelled cohort.
    """
    home = config["cohorts"].get(name, {}).get("slides") or name
    return (
        expand(rules.label_tiles.output.labels, name=home)
        if home in LABELLED_HOMES
        else []
    )


def cohort_label_tables(wildcards):
    """The tile labels of a labelled cohort's slides (none for an unlabelled cohort)."""
    return label_folder(wildcards.cohort)


def renamed(path, **wildcards):
    """Another rule's output path (``rules.X.output.y``) with its wildcards renamed (``name="dataset"``), for
    a rule that reads or writes it under another wildcard (the path stays written once).
    """
    for old, new in wildcards.items():
        path = path.replace(f"{{{old}}}", f"{{{new}}}")
    return path


def per_slide(pattern):
    """Input function: ``pattern`` for every slide of the rule's dataset or cohort."""
    return lambda wildcards: expand(pattern, slide=slides_of(name_of(wildcards)))


def model_dir(wildcards):
    """The folder of the model that predicts the rule's slides (or cohort): its dataset's model, or the
    cohort's variant of it.
    """
    name = name_of(wildcards)
    if name in VARIANT_COHORTS:
        return f"results/models/{model_of(config, name)}/variants/{name}"
    return f"results/models/{model_of(config, name)}"


def cohort_settings(cohort):
    """The model settings of the model that predicts a cohort (its variant's, if it has one)."""
    cfg = config["cohorts"][cohort]
    return model_settings(config, cfg["model"], variant=cfg["variant"])


def annotation_file(slide):
    """The slide's annotation file, when its home labels from annotations (else None)."""
    labels = labels_of(CELLS["dataset"][slide])
    path = sheet_value(slide, "annotations")
    return path if labels and labels["source"] == "annotations" and path else None


def annotation_files(wildcards):
    """Input function: the slide's annotation file, when its home labels from annotations."""
    path = annotation_file(wildcards.slide)
    return [path] if path else []


def all_annotation_files():
    """Every annotation file the study's labels read (for their checksums in the provenance)."""
    return sorted({path for slide in SLIDES if (path := annotation_file(slide))})


def annotation_files_of(name):
    """Slide -> annotation file, of the slides of a dataset or cohort that have one."""
    return {
        slide: path for slide in slides_of(name) if (path := annotation_file(slide))
    }


def ingest_settings(wildcards):
    """What ingest needs to know of one slide (its sheet MPP, and its home model's geometry as
    tiling and resolution settings); the file size only reruns ingest when a slide is replaced.
    """
    geometry = home_geometry(config, home_of(wildcards))
    return {
        "sheet_mpp": sheet_value(wildcards.slide, "mpp"),
        "file_size": slide_file_size(wildcards),
        "resolution": {**config["resolution"], "target_mpp": geometry.mpp},
        "tiling": {**config["tiling"], "tile_size": geometry.tile_size},
    }


def model_env(wildcards):
    """The conda env file of the model's dataset (used with --sdm conda)."""
    env = config["datasets"][model_of(config, name_of(wildcards))]["env"]
    return f"../../envs/{env}.yaml"


def cluster_check():
    """At the start of a run: a SLURM run whose job states cannot be read stops here, in one line."""
    plugin = workflow.executor_plugin
    try:
        check_cluster(
            executor=plugin.name if plugin else None,
            status_command=getattr(workflow.executor_settings, "status_command", None),
        )
    except ClusterError as error:
        raise SystemExit(f"Error: {error}") from None  # one line, no traceback


def model_gpus(wildcards):
    """GPUs the job asks the cluster for: the model dataset's ``gpus`` when its env is a GPU env."""
    return gpus_of(config["datasets"][model_of(config, name_of(wildcards))])


def image_size(wildcards):
    """Side images of a patch-folder dataset are resized to; None for slides (tiles keep their size)."""
    return config["datasets"][wildcards.dataset].get("patches", {}).get("image_size")


def model_classes(wildcards):
    return config["datasets"][model_of(config, name_of(wildcards))]["labels"]["classes"]


def prediction_tables(wildcards):
    """What evaluate scores: one table per slide, or the one table of a patch-folder dataset's images."""
    name = name_of(wildcards)
    if name in PATCH_DATASETS:
        return expand(rules.predict_patches.output.predictions, dataset=name)
    if name in EXTERNAL_COHORTS:
        return expand(
            rules.predict_external.output.tiles, cohort=name, slide=slides_of(name)
        )
    return expand(rules.predict.output.tiles, slide=slides_of(name))


def slide_scores(wildcards):
    """The slide scores (and map agreement) of the slides of a slide dataset or cohort."""
    if name_of(wildcards) in PATCH_DATASETS:
        return []
    return [
        path.replace(".tsv", ".scores.json") for path in prediction_tables(wildcards)
    ]


def model_geometry(wildcards):
    """The microns per pixel the dataset's model is trained at (None: images of unknown resolution)."""
    geometry = dataset_geometry(config, wildcards.dataset)
    return geometry.mpp if geometry else None


def leakage_check(wildcards):
    """For a cohort's slide: its cohort's check against the model's training data, which must pass first."""
    name = name_of(wildcards)
    return (
        expand(rules.split_cohort.output.leakage, cohort=name)
        if name in COHORTS
        else []
    )
