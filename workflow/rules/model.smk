# Stage 6: one model per dataset (in the dataset's own conda env), and a t-SNE of its features.
# train and tsne take the entries table only (it depends on every tile store): a rule that every
# slide's predict job waits on must have few inputs, or planning the DAG grows with slides squared.


rule train:
    input:
        entries="results/entries/{dataset}.tsv",
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
    threads: config["tf_threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=model_gpus,
    params:
        code=code_version("train"),
        tf_threads=config["tf_threads"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        model=lambda wildcards: model_settings(config, wildcards.dataset).to_dict(),
        image_size=image_size,
        mpp=model_geometry,
    script:
        "../../scripts/train.py"


rule tsne:
    input:
        entries="results/entries/{dataset}.tsv",
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
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=model_gpus,
    params:
        code=code_version("tsne"),
        tf_threads=config["tf_threads"],
        image_size=image_size,
        seed=config["splits"]["seed"],
    script:
        "../../scripts/tsne.py"
