# Stage 8: per-dataset evaluation and figures for the study report (`snakemake --report`), provenance.


rule evaluate:
    input:
        entries="results/entries/{dataset}.tsv",
        predictions=prediction_tables,
        history="results/models/{dataset}/history.tsv",
    output:
        metrics=report(
            "results/reports/{dataset}/metrics.tsv",
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
        per_item="results/reports/{dataset}/items.tsv",
        confusion=report(
            "results/reports/{dataset}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
        roc=report(
            "results/reports/{dataset}/roc.png",
            caption="../report/roc.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
        curves=report(
            "results/reports/{dataset}/training_curves.png",
            caption="../report/curves.rst",
            category="Evaluation",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/evaluate/{dataset}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        classes=lambda wildcards: dataset_config(wildcards)["labels"]["classes"],
        positive_class=lambda wildcards: dataset_config(wildcards)["positive_class"],
    script:
        "../../scripts/evaluate.py"


rule provenance:
    input:
        sheet=[config["slides"]] if config["slides"] else [],
    output:
        provenance=report(
            "results/provenance.json",
            caption="../report/provenance.rst",
            category="Provenance",
        ),
    log:
        "results/logs/provenance.log",
    localrule: True
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=config,
        workflow_dir=workflow.basedir,
    script:
        "../../scripts/provenance.py"
