# Stage 8: metrics with confidence intervals and figures of every dataset and labelled cohort,
# every model on every held-out set side by side, provenance; `snakemake --report` gathers them.


rule evaluate:
    input:
        entries=rules.entries.output.entries,
        predictions=prediction_tables,
        scores=slide_scores,
        history=lambda wildcards: f"{model_dir(wildcards)}/history.tsv",
    output:
        metrics="results/reports/{name}/metrics.tsv",
        per_item="results/reports/{name}/items.tsv",
        class_auc="results/reports/{name}/class_auc.tsv",
        confusion_table="results/reports/{name}/confusion.tsv",
        confusion=report(
            "results/reports/{name}/confusion.png",
            caption="../report/confusion.rst",
            category="3. Evaluation",
            subcategory="{name}",
        ),
        roc=report(
            "results/reports/{name}/roc.png",
            caption="../report/roc.rst",
            category="3. Evaluation",
            subcategory="{name}",
        ),
        curves=report(
            "results/reports/{name}/training_curves.png",
            caption="../report/curves.rst",
            category="3. Evaluation",
            subcategory="{name}",
        ),
    log:
        "results/logs/evaluate/{name}.log",
    wildcard_constraints:
        name=alternatives(TILE_EVALUATED),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_version("evaluate"),
        classes=model_classes,
        positive_class=lambda wildcards: positive_class(config, wildcards.name),
        threshold=config["prediction"]["threshold"],
        evaluation=config["evaluation"],
    script:
        "../../scripts/evaluate.py"


rule crossval:
    input:
        oof=fold_files("oof"),
    output:
        metrics="results/crossval/{dataset}/metrics.tsv",
        oof="results/crossval/{dataset}/oof.tsv",
        roc=report(
            "results/crossval/{dataset}/roc.png",
            caption="../report/crossval.rst",
            category="3. Evaluation",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/crossval/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(CROSSVAL_DATASETS),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_version("crossval"),
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        positive_class=lambda wildcards: positive_class(config, wildcards.dataset),
        threshold=config["prediction"]["threshold"],
        slide_score=config["prediction"]["slide_score"],
        evaluation=config["evaluation"],
    script:
        "../../scripts/crossval.py"


rule cross_site:
    input:
        metrics=expand(
            "results/reports/{cohort}/metrics.tsv", cohort=CROSS_SITE_COHORTS
        ),
        in_site=expand(
            "results/reports/{dataset}/metrics.tsv", dataset=CROSS_SITE_MODELS
        ),
    output:
        table="results/reports/cross_site.tsv",
        figure=report(
            "results/reports/cross_site.png",
            caption="../report/cross_site.rst",
            category="1. Study summary",
            subcategory="2. Cross-site",
        ),
    log:
        "results/logs/cross_site.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_version("cross_site"),
        cohorts=cross_site_rows(config, ROLES),
        models=CROSS_SITE_MODELS,
    script:
        "../../scripts/cross_site.py"


rule performance:
    input:
        metrics=expand("results/reports/{name}/metrics.tsv", name=EVALUATED),
    output:
        table="results/reports/performance.tsv",
    log:
        "results/logs/performance.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_version("performance"),
        models={name: model_of(config, name) for name in EVALUATED},
    script:
        "../../scripts/performance.py"


rule dataset_page:
    input:
        metrics="results/reports/{name}/metrics.tsv",
        per_item="results/reports/{name}/items.tsv",
        class_auc="results/reports/{name}/class_auc.tsv",
        confusion="results/reports/{name}/confusion.tsv",
        splits=renamed(rules.split_slides.output.splits, dataset="name"),  # any split rule's
        leakage=renamed(rules.split_slides.output.leakage, dataset="name"),
        crossval=lambda wildcards: (
            [f"results/crossval/{wildcards.name}/metrics.tsv"]
            if wildcards.name in CROSSVAL_DATASETS
            else []
        ),
    output:
        page=report(
            "results/reports/{name}/summary.html",
            caption="../report/dataset_page.rst",
            category="3. Evaluation",
            subcategory="{name}",
            labels={"page": "numbers"},
        ),
    log:
        "results/logs/dataset_page/{name}.log",
    wildcard_constraints:
        name=alternatives(TILE_EVALUATED),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_version("dataset_page"),
        model=lambda wildcards: model_of(config, wildcards.name),
    script:
        "../../scripts/dataset_page.py"


rule study_pages:
    input:
        audit=[rules.audit.output.table] if SLIDES else [],
        slides=expand(rules.ingest.output.slide, slide=SLIDES),
        performance="results/reports/performance.tsv",
        cross_site=["results/reports/cross_site.tsv"] if CROSS_SITE_COHORTS else [],
        cross_site_figure=(
            ["results/reports/cross_site.png"] if CROSS_SITE_COHORTS else []
        ),
        regimes=["results/reports/regimes.tsv"] if REGIMES else [],
        provenance="results/provenance.json",
    output:
        summary=report(
            "results/reports/study.html",
            caption="../report/study.rst",
            category="1. Study summary",
            subcategory="1. Summary page",
        ),
        qc=report(
            "results/reports/qc.html",
            caption="../report/qc.rst",
            category="2. Slides: quality control",
        ),
        provenance=report(
            "results/reports/provenance.html",
            caption="../report/provenance.rst",
            category="5. Provenance",
        ),
    log:
        "results/logs/study_pages.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        code=code_version("study_pages"),
        datasets=dataset_rows(config, sheet, ROLES),
        cohorts=cohort_rows(config, sheet, ROLES),
        homes=sheet["dataset"].to_dict(),
    script:
        "../../scripts/study_pages.py"


rule provenance:
    input:
        sheet=[config["slides"]] if config["slides"] else [],
        audit=[rules.audit.output.table] if SLIDES else [],
        annotations=all_annotation_files(),
    output:
        provenance="results/provenance.json",
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
        code=code_version("provenance"),
        config=config,
        workflow_dir=workflow.basedir,
        state=run_state(workflow.basedir),  # a new commit, edit or package: written afresh
        runs_log="results/logs/runs.tsv",  # not an input: the command line of the run writing it
    script:
        "../../scripts/provenance.py"
