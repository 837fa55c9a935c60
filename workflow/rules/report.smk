# Stage 8: metrics with confidence intervals and figures of every dataset and labelled cohort,
# every model on every held-out set side by side, provenance; `snakemake --report` gathers them.


rule evaluate:
    input:
        entries="results/entries/{name}.tsv",
        predictions=prediction_tables,
        scores=slide_scores,
        history=lambda wildcards: (
            [f"results/models/{wildcards.name}/history.tsv"]
            if wildcards.name in DATASETS
            else []
        ),
    output:
        metrics=report(
            "results/reports/{name}/metrics.tsv",
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{name}",
        ),
        per_item="results/reports/{name}/items.tsv",
        class_auc="results/reports/{name}/class_auc.tsv",
        confusion_table="results/reports/{name}/confusion.tsv",
        confusion=report(
            "results/reports/{name}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{name}",
        ),
        roc=report(
            "results/reports/{name}/roc.png",
            caption="../report/roc.rst",
            category="Evaluation",
            subcategory="{name}",
        ),
        curves=report(
            "results/reports/{name}/training_curves.png",
            caption="../report/curves.rst",
            category="Evaluation",
            subcategory="{name}",
        ),
    log:
        "results/logs/evaluate/{name}.log",
    wildcard_constraints:
        name=alternatives(EVALUATED),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        classes=model_classes,
        positive_class=lambda wildcards: positive_class(config, wildcards.name),
        threshold=config["prediction"]["threshold"],
        evaluation=config["evaluation"],
    script:
        "../../scripts/evaluate.py"


rule performance:
    input:
        metrics=expand("results/reports/{name}/metrics.tsv", name=EVALUATED),
    output:
        table=report(
            "results/reports/performance.tsv",
            caption="../report/performance.rst",
            category="Evaluation",
        ),
    log:
        "results/logs/performance.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        models={name: model_of(config, name) for name in EVALUATED},
    script:
        "../../scripts/performance.py"


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
