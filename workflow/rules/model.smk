# Stage 6: one model per dataset (in the dataset's own conda env), and a t-SNE of its features.
# A cohort with a variant (settings changed, e.g. stain) is predicted by its own variant of the model.
# With splits: folds >= 2: one model per fold (out-of-fold predictions of its held-out patients), and the
# deployed model is their ensemble (deploy: ensemble) or the train rule's model (deploy: refit).
# train and tsne take the entries table only (it depends on every tile store): a rule that every
# slide's predict job waits on must have few inputs, or planning the DAG grows with slides squared.


rule train:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        features=probe_features,
        init=init_model,
        encoder=lambda wildcards: encoder_inputs(training_settings(wildcards)),
    output:
        keras="results/models/{dataset}/model.keras",
        history="results/models/{dataset}/history.tsv",
        config="results/models/{dataset}/config.json",
    log:
        "results/logs/train/{dataset}.log",
    benchmark:
        "results/benchmarks/train/{dataset}.tsv"
    wildcard_constraints:
        dataset=alternatives(TRAINED_DATASETS),
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
        model_settings=lambda wildcards: model_settings(
            config, wildcards.dataset
        ).to_dict(),
        image_size=image_size,
        mpp=model_geometry,
        encoder=lambda wildcards: model_encoder(training_settings(wildcards)),
    script:
        "../../scripts/train.py"


rule train_variant:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        features=probe_features,
        init=init_model,
        encoder=lambda wildcards: encoder_inputs(training_settings(wildcards)),
    output:
        keras="results/models/{dataset}/variants/{cohort}/model.keras",
        history="results/models/{dataset}/variants/{cohort}/history.tsv",
        config="results/models/{dataset}/variants/{cohort}/config.json",
    log:
        "results/logs/train_variant/{dataset}/{cohort}.log",
    benchmark:
        "results/benchmarks/train_variant/{dataset}/{cohort}.tsv"
    wildcard_constraints:
        cohort=alternatives(VARIANT_COHORTS),
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=model_gpus,
    params:
        code=code_version("train_variant"),
        tf_threads=config["tf_threads"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        model_settings=lambda wildcards: cohort_settings(wildcards.cohort).to_dict(),
        image_size=image_size,
        mpp=model_geometry,
        encoder=lambda wildcards: model_encoder(training_settings(wildcards)),
    script:
        "../../scripts/train_variant.py"


rule train_regime:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        features=probe_features,
        init=init_model,
        encoder=lambda wildcards: encoder_inputs(training_settings(wildcards)),
    output:
        keras="results/models/{dataset}/regimes/{regime}/model.keras",
        history="results/models/{dataset}/regimes/{regime}/history.tsv",
        config="results/models/{dataset}/regimes/{regime}/config.json",
    log:
        "results/logs/train_regime/{dataset}/{regime}.log",
    benchmark:
        "results/benchmarks/train_regime/{dataset}/{regime}.tsv"
    wildcard_constraints:
        dataset=alternatives(REGIMES),
        regime=alternatives(REGIME_NAMES),
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=model_gpus,
    params:
        code=code_version("train_regime"),
        tf_threads=config["tf_threads"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        model_settings=lambda wildcards: training_settings(wildcards).to_dict(),
        image_size=image_size,
        mpp=model_geometry,
        encoder=lambda wildcards: model_encoder(training_settings(wildcards)),
    script:
        "../../scripts/train_regime.py"


rule regimes:
    input:
        entries=expand(rules.entries.output.entries, name=sorted(REGIMES)),
        models=[row["model_path"] for row in regime_rows(config)],
        configs=[row["model_json"] for row in regime_rows(config)],
        encoders=regime_encoder_files(),
    output:
        regimes=report(
            "results/reports/regimes.tsv",
            caption="../report/regimes.rst",
            category="1. Study summary",
            subcategory="3. Transfer-learning regimes",
        ),
    log:
        "results/logs/regimes.log",
    conda:
        "../../envs/tensorflow-cpu.yaml"
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code_version("regimes"),
        tf_threads=config["tf_threads"],
        models=regime_rows(config),
        evaluation=config["evaluation"],
    script:
        "../../scripts/regimes.py"


rule train_fold:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        features=probe_features,
        init=init_model,
        encoder=lambda wildcards: encoder_inputs(training_settings(wildcards)),
    output:
        keras="results/models/{dataset}/folds/{fold}/model.keras",
        history="results/models/{dataset}/folds/{fold}/history.tsv",
        config="results/models/{dataset}/folds/{fold}/config.json",
        oof="results/models/{dataset}/folds/{fold}/oof.tsv",
    log:
        "results/logs/train_fold/{dataset}/{fold}.log",
    benchmark:
        "results/benchmarks/train_fold/{dataset}/{fold}.tsv"
    wildcard_constraints:
        dataset=alternatives(CROSSVAL_DATASETS),
        fold=r"\d+",
    conda:
        model_env
    threads: config["tf_threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=model_gpus,
    params:
        code=code_version("train_fold"),
        tf_threads=config["tf_threads"],
        classes=lambda wildcards: labels_of(wildcards.dataset)["classes"],
        model_settings=lambda wildcards: model_settings(
            config, wildcards.dataset
        ).to_dict(),
        image_size=image_size,
        mpp=model_geometry,
        encoder=lambda wildcards: model_encoder(training_settings(wildcards)),
    script:
        "../../scripts/train_fold.py"


rule ensemble:
    input:
        models=fold_files("keras"),
        configs=fold_files("config"),
        histories=fold_files("history"),
    output:
        keras="results/models/{dataset}/model.keras",
        history="results/models/{dataset}/history.tsv",
        config="results/models/{dataset}/config.json",
    log:
        "results/logs/ensemble/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(ENSEMBLE_DATASETS),
    conda:
        model_env
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        code=code_version("ensemble"),
        tf_threads=1,
    script:
        "../../scripts/ensemble.py"


rule tsne:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        keras="results/models/{dataset}/model.keras",
        model_config="results/models/{dataset}/config.json",
        encoder=lambda wildcards: encoder_inputs(
            model_settings(config, wildcards.dataset)
        ),
    output:
        tsne=report(
            "results/reports/{dataset}/tsne.png",
            caption="../report/tsne.rst",
            category="3. Evaluation",
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
