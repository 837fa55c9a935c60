# Stages 6-7: one model per dataset (in the dataset's own conda env), predictions and probability maps.


rule train:
    input:
        entries="results/entries/{dataset}.tsv",
        stores=per_slide("results/tiles/{slide}.zarr"),
    output:
        model="results/models/{dataset}/model.keras",
        history="results/models/{dataset}/history.tsv",
        config="results/models/{dataset}/config.json",
    log:
        "results/logs/train/{dataset}.log",
    benchmark:
        "results/benchmarks/train/{dataset}.tsv"
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        model=lambda wildcards: model_settings(config, wildcards.dataset).to_dict(),
        image_size=image_size,
    script:
        "../../scripts/train.py"


rule predict:
    input:
        model=lambda wildcards: f"results/models/{dataset_of(wildcards)}/model.keras",
        store="results/tiles/{slide}.zarr",
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
    log:
        "results/logs/predict/{slide}.log",
    benchmark:
        "results/benchmarks/predict/{slide}.tsv"
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        positive_class=lambda wildcards: dataset_config(wildcards)["positive_class"],
    script:
        "../../scripts/predict.py"


rule predict_patches:
    input:
        model="results/models/{dataset}/model.keras",
        entries="results/entries/{dataset}.tsv",
    output:
        predictions="results/predictions/{dataset}/images.tsv",
    log:
        "results/logs/predict_patches/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PATCH_DATASETS),
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        image_size=image_size,
    script:
        "../../scripts/predict_patches.py"


rule tsne:
    input:
        entries="results/entries/{dataset}.tsv",
        stores=per_slide("results/tiles/{slide}.zarr"),
        model="results/models/{dataset}/model.keras",
    output:
        tsne=report(
            "results/reports/{dataset}/tsne.png",
            caption="../report/tsne.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
        embedding="results/reports/{dataset}/tsne.tsv",
    log:
        "results/logs/tsne/{dataset}.log",
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        image_size=image_size,
        seed=config["splits"]["seed"],
    script:
        "../../scripts/tsne.py"
