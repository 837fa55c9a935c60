# Stages 4-5: tile labels, patient-grouped splits with the leakage check, and each dataset's entries.


rule label_tiles:
    input:
        store="results/tiles/{slide}.zarr",
        annotations=annotation_files,
    output:
        labels="results/labels/{slide}.tsv",
    log:
        "results/logs/label_tiles/{slide}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        labels=lambda wildcards: dataset_config(wildcards)["labels"],
        slide_label=lambda wildcards: sheet_value(wildcards.slide, "label"),
    script:
        "../../scripts/label_tiles.py"


rule split_slides:
    input:
        labels=per_slide("results/labels/{slide}.tsv"),
        info=per_slide("results/slides/{slide}/info.json"),
    output:
        splits="results/splits/{dataset}.tsv",
        leakage="results/splits/{dataset}.leakage.json",
        balance=report(
            "results/splits/{dataset}.balance.tsv",
            caption="../report/balance.rst",
            category="Splits",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/split/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(SLIDE_DATASETS),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        slides=lambda wildcards: slides_of(wildcards.dataset),
        patients=lambda wildcards: sheet.loc[
            slides_of(wildcards.dataset), "patient_id"
        ].tolist(),
        splits=config["splits"],
        positive_class=lambda wildcards: dataset_config(wildcards)["positive_class"],
    script:
        "../../scripts/split_slides.py"


rule split_patches:
    output:
        splits="results/splits/{dataset}.tsv",
        leakage="results/splits/{dataset}.leakage.json",
        balance=report(
            "results/splits/{dataset}.balance.tsv",
            caption="../report/balance.rst",
            category="Splits",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/split/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PATCH_DATASETS),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        patches=lambda wildcards: dataset_config(wildcards)["patches"],
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        splits=config["splits"],
    script:
        "../../scripts/split_patches.py"


rule entries:
    input:
        splits="results/splits/{dataset}.tsv",
        labels=per_slide("results/labels/{slide}.tsv"),
        stores=per_slide("results/tiles/{slide}.zarr"),
    output:
        entries="results/entries/{dataset}.tsv",
    log:
        "results/logs/entries/{dataset}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        slides=lambda wildcards: slides_of(wildcards.dataset),
    script:
        "../../scripts/entries.py"
