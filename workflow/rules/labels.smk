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
        code=code_version("label_tiles"),
        labels=lambda wildcards: labels_of(home_of(wildcards)),
        slide_label=lambda wildcards: sheet_value(wildcards.slide, "label"),
    script:
        "../../scripts/label_tiles.py"


rule split_slides:
    input:
        labels=per_slide("results/labels/{slide}.tsv"),
        info=per_slide("results/slides/{slide}/info.json"),
        tiling=per_slide("results/slides/{slide}/tiling_qc.json"),
    output:
        splits="results/splits/{dataset}.tsv",
        leakage="results/splits/{dataset}.leakage.json",
        balance="results/splits/{dataset}.balance.tsv",
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
        code=code_version("split_slides"),
        slides=lambda wildcards: slides_of(wildcards.dataset),
        patients=lambda wildcards: sheet.loc[
            slides_of(wildcards.dataset), "patient_id"
        ].tolist(),
        sites=lambda wildcards: sites_of(wildcards.dataset),
        splits=config["splits"],
        positive_class=lambda wildcards: positive_class(config, wildcards.dataset),
    script:
        "../../scripts/split_slides.py"


rule split_patches:
    output:
        splits="results/splits/{dataset}.tsv",
        leakage="results/splits/{dataset}.leakage.json",
        balance="results/splits/{dataset}.balance.tsv",
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
        code=code_version("split_patches"),
        patches=lambda wildcards: config["datasets"][wildcards.dataset]["patches"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        splits=config["splits"],
    script:
        "../../scripts/split_patches.py"


rule split_cohort:
    input:
        labels=cohort_label_tables,
        info=per_slide("results/slides/{slide}/info.json"),
        tiling=per_slide("results/slides/{slide}/tiling_qc.json"),
        model_splits=lambda wildcards: f"results/splits/{model_of(config, wildcards.cohort)}.tsv",
        model_info=lambda wildcards: expand(
            "results/slides/{slide}/info.json",
            slide=slides_of(model_of(config, wildcards.cohort)),
        ),
    output:
        splits="results/splits/{cohort}.tsv",
        leakage="results/splits/{cohort}.leakage.json",
    log:
        "results/logs/split/{cohort}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_version("split_cohort"),
        model=lambda wildcards: model_of(config, wildcards.cohort),
        slides=lambda wildcards: slides_of(wildcards.cohort),
        patients=lambda wildcards: sheet.loc[
            slides_of(wildcards.cohort), "patient_id"
        ].tolist(),
        positive_class=lambda wildcards: positive_class(config, wildcards.cohort),
    script:
        "../../scripts/split_cohort.py"


rule entries:
    input:
        splits="results/splits/{name}.tsv",
        labels=per_slide("results/labels/{slide}.tsv"),
        stores=per_slide("results/tiles/{slide}.zarr"),
    output:
        entries="results/entries/{name}.tsv",
    log:
        "results/logs/entries/{name}.log",
    wildcard_constraints:
        name=alternatives(EVALUATED),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_version("entries"),
        classes=lambda wildcards: labels_of(wildcards.name)["classes"],
        slides=lambda wildcards: slides_of(wildcards.name),
    script:
        "../../scripts/entries.py"
