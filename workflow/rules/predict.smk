# Stage 7: slides through their model (probability maps of every class, heatmaps, QuPath and
# OME-TIFF exports), slides of other datasets through a cohort's model, images of patch datasets.


rule predict:
    input:
        keras=lambda wildcards: f"{model_dir(wildcards)}/model.keras",
        model_config=lambda wildcards: f"{model_dir(wildcards)}/config.json",
        encoder=lambda wildcards: encoder_inputs(predicting_settings(wildcards)),
        store=rules.ingest.output.store,
        slide=rules.ingest.output.slide,
        annotations=annotation_files,
        checked=leakage_check,
    output:
        tiles="results/predictions/{slide}.tsv",
        scores="results/predictions/{slide}.scores.json",
        map=directory("results/maps/{slide}.zarr"),
        heatmap=report(
            "results/heatmaps/{slide}.jpg",
            caption="../report/heatmap.rst",
            category="4. Heatmaps",
            subcategory=home_of,
            labels={"slide": "{slide}", "map": "tumor probability"},
        ),
        classmap=report(
            "results/classmaps/{slide}.jpg",
            caption="../report/classmap.rst",
            category="4. Heatmaps",
            subcategory=home_of,
            labels={"slide": "{slide}", "map": "most probable class"},
        ),
        qupath="results/qupath/{slide}.geojson",
        overlay="results/overlays/{slide}.ome.tif",
    log:
        "results/logs/predict/{slide}.log",
    benchmark:
        "results/benchmarks/predict/{slide}.tsv"
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=model_gpus,
    params:
        code=code_version("predict"),
        tf_threads=config["tf_threads"],
        model=lambda wildcards: model_of(config, home_of(wildcards)),
        labels=lambda wildcards: labels_of(home_of(wildcards)),
        slide_label=lambda wildcards: sheet_value(wildcards.slide, "label"),
        classes=model_classes,
        positive_class=lambda wildcards: positive_class(config, home_of(wildcards)),
        prediction=config["prediction"],
        tolerance=config["resolution"]["tolerance"],
    script:
        "../../scripts/predict.py"


rule predict_external:
    input:
        keras=lambda wildcards: f"{model_dir(wildcards)}/model.keras",
        model_config=lambda wildcards: f"{model_dir(wildcards)}/config.json",
        encoder=lambda wildcards: encoder_inputs(predicting_settings(wildcards)),
        store=rules.ingest.output.store,
        slide=rules.ingest.output.slide,
        annotations=annotation_files,
        checked=rules.split_cohort.output.leakage,
    output:
        tiles="results/cohorts/{cohort}/predictions/{slide}.tsv",
        scores="results/cohorts/{cohort}/predictions/{slide}.scores.json",
        heatmap=report(
            "results/cohorts/{cohort}/heatmaps/{slide}.jpg",
            caption="../report/heatmap.rst",
            category="4. Heatmaps",
            subcategory="{cohort}",
            labels={"slide": "{slide}", "map": "tumor probability"},
        ),
        classmap="results/cohorts/{cohort}/classmaps/{slide}.jpg",
        qupath="results/cohorts/{cohort}/qupath/{slide}.geojson",
    log:
        "results/logs/predict_external/{cohort}/{slide}.log",
    wildcard_constraints:
        cohort=alternatives(EXTERNAL_COHORTS),
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=model_gpus,
    params:
        code=code_version("predict_external"),
        tf_threads=config["tf_threads"],
        model=lambda wildcards: model_of(config, wildcards.cohort),
        labels=lambda wildcards: labels_of(home_of(wildcards)),
        slide_label=lambda wildcards: sheet_value(wildcards.slide, "label"),
        classes=model_classes,
        positive_class=lambda wildcards: positive_class(config, wildcards.cohort),
        prediction=config["prediction"],
        tolerance=config["resolution"]["tolerance"],
    script:
        "../../scripts/predict_external.py"


rule predict_patches:
    input:
        keras="results/models/{dataset}/model.keras",
        model_config="results/models/{dataset}/config.json",
        entries=renamed(rules.entries.output.entries, name="dataset"),
    output:
        predictions="results/predictions/{dataset}/images.tsv",
    log:
        "results/logs/predict_patches/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PATCH_DATASETS),
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=model_gpus,
    params:
        code=code_version("predict_patches"),
        tf_threads=config["tf_threads"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        image_size=image_size,
    script:
        "../../scripts/predict_patches.py"
