# Stages 6-7: one model per dataset (in the dataset's own conda env), predictions and probability maps.


rule train:
    input:
        unpack(train_inputs),
    output:
        model="results/models/{dataset}/model.keras",
        history="results/models/{dataset}/history.tsv",
        config="results/models/{dataset}/config.json",
    params:
        slides=lambda wildcards: slides_of(wildcards.dataset),
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        model=lambda wildcards: model_config(config, wildcards.dataset),
        size=lambda wildcards: input_pixels(wildcards.dataset),
    log:
        "results/logs/train/{dataset}.log",
    benchmark:
        "results/benchmarks/train/{dataset}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        model_env
    script:
        "../../scripts/train.py"


rule predict:
    input:
        model=lambda wildcards: f"results/models/{dataset_of(wildcards)}/model.keras",
        store="results/tiles/{slide}.zarr",
        info="results/slides/{slide}/info.json",
        thumbnail="results/slides/{slide}/thumbnail.png",
    output:
        tiles="results/predictions/{slide}.tsv",
        map=directory("results/maps/{slide}.zarr"),
        heatmap=report(
            "results/heatmaps/{slide}.png",
            caption="../report/heatmap.rst",
            category="Heatmaps",
            subcategory=lambda wildcards: dataset_of(wildcards),
            labels={"slide": "{slide}"},
        ),
        scores="results/predictions/{slide}.scores.json",
    params:
        classes=lambda wildcards: labels_of(dataset_of(wildcards))["classes"],
        positive_class=lambda wildcards: config["datasets"][dataset_of(wildcards)]["positive_class"],
    log:
        "results/logs/predict/{slide}.log",
    benchmark:
        "results/benchmarks/predict/{slide}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        model_env
    script:
        "../../scripts/predict.py"


rule predict_patches:
    input:
        model="results/models/{dataset}/model.keras",
        splits="results/splits/{dataset}.tsv",
    output:
        "results/predictions/{dataset}/images.tsv",
    wildcard_constraints:
        dataset=alternatives(PATCH_DATASETS),
    params:
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        size=lambda wildcards: input_pixels(wildcards.dataset),
    log:
        "results/logs/predict_patches/{dataset}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        model_env
    script:
        "../../scripts/predict_patches.py"


rule tsne:
    input:
        unpack(train_inputs),
        model="results/models/{dataset}/model.keras",
    output:
        tsne=report(
            "results/reports/{dataset}/tsne.png",
            caption="../report/tsne.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
        embedding="results/reports/{dataset}/tsne.tsv",
    params:
        slides=lambda wildcards: slides_of(wildcards.dataset),
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        size=lambda wildcards: input_pixels(wildcards.dataset),
        seed=config["splits"]["seed"],
    log:
        "results/logs/tsne/{dataset}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        model_env
    script:
        "../../scripts/tsne.py"
