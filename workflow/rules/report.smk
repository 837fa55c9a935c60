# Stage 8: per-dataset evaluation and figures for the study report (`snakemake --report`).


rule evaluate:
    input:
        unpack(evaluate_inputs),
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
    params:
        slides=lambda wildcards: slides_of(wildcards.dataset),
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        positive_class=positive_class,
    log:
        "results/logs/evaluate/{dataset}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/evaluate.py"


rule provenance:
    input:
        sheet=[config["slides"]] if config.get("slides") else [],
    output:
        report("results/provenance.json", caption="../report/provenance.rst", category="Provenance"),
    params:
        config=config,
        workflow_dir=workflow.basedir,
    log:
        "results/logs/provenance.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    localrule: True
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/provenance.py"
