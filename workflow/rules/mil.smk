# Stage 6-8 for slide-level labels: attention MIL and a mean-pooling baseline on an encoder's stored tile
# features (model kind mil), cross-validated over patients (folds x seeds, one job per dataset), then the
# metrics, the attention checked against annotations, and every slide's attention map, QuPath tiles and
# tile montage under results/attention/<dataset>/ (one job per dataset: no TensorFlow).


rule train_mil:
    input:
        features=lambda wildcards: expand(
            "results/features/{encoder}/{slide}.zarr",
            encoder=model_settings(config, wildcards.dataset).encoder,
            slide=slides_of(wildcards.dataset),
        ),
        splits=rules.split_slides.output.splits,
    output:
        models=directory("results/models/{dataset}/mil"),
        predictions="results/mil/{dataset}/predictions.tsv",
        attention="results/mil/{dataset}/attention.tsv",
        history="results/mil/{dataset}/history.tsv",
    log:
        "results/logs/train_mil/{dataset}.log",
    benchmark:
        "results/benchmarks/train_mil/{dataset}.tsv"
    wildcard_constraints:
        dataset=alternatives(MIL_DATASETS),
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=model_gpus,
    params:
        code=code_version("train_mil"),
        tf_threads=config["tf_threads"],
        slides=lambda wildcards: slides_of(wildcards.dataset),
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        mil=lambda wildcards: mil_section(config, wildcards.dataset),
    script:
        "../../scripts/train_mil.py"


rule mil_report:
    input:
        predictions=rules.train_mil.output.predictions,
        attention=rules.train_mil.output.attention,
        slides=lambda wildcards: expand(
            rules.ingest.output.slide, slide=slides_of(wildcards.dataset)
        ),
        stores=lambda wildcards: expand(
            rules.ingest.output.store, slide=slides_of(wildcards.dataset)
        ),
        annotations=lambda wildcards: sorted(
            {
                path
                for slide in slides_of(wildcards.dataset)
                if (path := sheet_value(slide, "annotations"))
            }
        ),
    output:
        metrics="results/reports/{dataset}/metrics.tsv",
        mil_metrics="results/reports/{dataset}/mil_metrics.tsv",
        attention_check="results/reports/{dataset}/attention_check.tsv",
        roc="results/reports/{dataset}/mil_roc.png",
        page=report(
            "results/reports/{dataset}/summary.html",
            caption="../report/mil_page.rst",
            category="3. Evaluation",
            subcategory="{dataset}",
            labels={"page": "numbers"},
        ),
        # per slide: <slide>.jpg (map), <slide>.geojson (QuPath tiles), <slide>.tiles.jpg (montage)
        attention=report(
            directory("results/attention/{dataset}"),
            patterns=["{slide}.jpg"],
            caption="../report/attention.rst",
            category="4. Slides",
            subcategory="attention ({dataset})",
        ),
    log:
        "results/logs/mil_report/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(MIL_DATASETS),
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=code_version("mil_report"),
        slides=lambda wildcards: slides_of(wildcards.dataset),
        annotation_files=lambda wildcards: {
            slide: sheet_value(slide, "annotations") or ""
            for slide in slides_of(wildcards.dataset)
        },
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        positive_class=lambda wildcards: positive_class(config, wildcards.dataset),
        mil=lambda wildcards: mil_section(config, wildcards.dataset),
        evaluation=config["evaluation"],
    script:
        "../../scripts/mil_report.py"
