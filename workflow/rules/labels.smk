# Stages 4-5: tile labels, patient-grouped splits with the leakage check, and each dataset's entries.
# Tile labels are one job per dataset (a table per slide in results/labels/<dataset>/), not one per
# slide: a label change relabels a dataset's slides (quick) and never re-tiles them, and the study's
# plan has one job less per slide. predict labels its own slide the same way, for the agreement of
# its map, so no slide's prediction waits on a job with an input per slide.


rule label_tiles:
    input:
        stores=per_slide(rules.ingest.output.store),
        annotations=lambda wildcards: sorted(
            set(annotation_files_of(wildcards.name).values())
        ),
    output:
        labels=directory("results/labels/{name}"),
    log:
        "results/logs/label_tiles/{name}.log",
    wildcard_constraints:
        name=alternatives(LABELLED_HOMES),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        code=code_version("label_tiles"),
        slides=lambda wildcards: slides_of(wildcards.name),
        labels=lambda wildcards: labels_of(wildcards.name),
        annotation_files=lambda wildcards: annotation_files_of(wildcards.name),
        slide_labels=lambda wildcards: {
            slide: sheet_value(slide, "label") for slide in slides_of(wildcards.name)
        },
        on_bad_slide=config["on_bad_slide"],
    script:
        "../../scripts/label_tiles.py"


rule split_slides:
    input:
        labels=lambda wildcards: label_folder(wildcards.dataset),
        audit=rules.audit.output.table,
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
        splits=lambda wildcards: split_settings(wildcards.dataset),
        positive_class=lambda wildcards: positive_class(config, wildcards.dataset),
    script:
        "../../scripts/split_slides.py"


rule split_patches:
    output:
        splits=rules.split_slides.output.splits,
        leakage=rules.split_slides.output.leakage,
        balance=rules.split_slides.output.balance,
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
        splits=lambda wildcards: split_settings(wildcards.dataset),
    script:
        "../../scripts/split_patches.py"


rule split_cohort:
    input:
        labels=cohort_label_tables,
        audit=rules.audit.output.table,
        model_splits=lambda wildcards: expand(
            rules.split_slides.output.splits,
            dataset=model_of(config, wildcards.cohort),
        )[0],
    output:
        splits=renamed(rules.split_slides.output.splits, dataset="cohort"),
        leakage=renamed(rules.split_slides.output.leakage, dataset="cohort"),
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
        model_slides=lambda wildcards: slides_of(model_of(config, wildcards.cohort)),
        slides=lambda wildcards: slides_of(wildcards.cohort),
        patients=lambda wildcards: sheet.loc[
            slides_of(wildcards.cohort), "patient_id"
        ].tolist(),
        positive_class=lambda wildcards: positive_class(config, wildcards.cohort),
    script:
        "../../scripts/split_cohort.py"


rule entries:
    input:
        splits=renamed(rules.split_slides.output.splits, dataset="name"),  # any split rule's
        labels=lambda wildcards: label_folder(wildcards.name),
        stores=per_slide(rules.ingest.output.store),
    output:
        entries="results/entries/{name}.tsv",
    log:
        "results/logs/entries/{name}.log",
    wildcard_constraints:
        name=alternatives(TILE_EVALUATED),
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
