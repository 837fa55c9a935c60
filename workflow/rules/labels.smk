# Stages 4-5: tile labels, and patient-grouped splits with the leakage check.


rule label_tiles:
    input:
        store="results/tiles/{slide}.zarr",
        info="results/slides/{slide}/info.json",
        annotations=annotation_files,
    output:
        "results/labels/{slide}.tsv",
    params:
        labels=lambda wildcards: labels_of(dataset_of(wildcards)),
        slide_label=lambda wildcards: sheet_value(wildcards.slide, "label"),
    log:
        "results/logs/label_tiles/{slide}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/slidesnake.yaml"
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
    wildcard_constraints:
        dataset=alternatives(SLIDE_DATASETS),
    params:
        patients=lambda wildcards: {s: sheet.at[s, "patient_id"] for s in slides_of(wildcards.dataset)},
        splits=config["splits"],
        positive_class=positive_class,
    log:
        "results/logs/split/{dataset}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/slidesnake.yaml"
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
    wildcard_constraints:
        dataset=alternatives(PATCH_DATASETS),
    params:
        patches=lambda wildcards: config["datasets"][wildcards.dataset]["patches"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        splits=config["splits"],
    log:
        "results/logs/split/{dataset}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/split_patches.py"
