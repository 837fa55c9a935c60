# Stage 6a: tile features. One job per slide and encoder (config encoders) reads the slide's tile
# store (a patch-folder dataset: its images, one job) and writes results/features/{encoder}/{slide}.zarr: float16 (tile, feature) and the tile
# corners, with the encoder's weights digests, licence and geometry as attributes. Changing an
# encoder never re-tiles; changing the tiling re-extracts (the tile store is an input). Every
# encoder's files are checked (sha256, field of view, licence policy) before any job starts.


rule features:
    input:
        store=rules.ingest.output.store,
        weights=lambda wildcards: encoder_files(wildcards.encoder),
        keras=lambda wildcards: encoder_model(wildcards.encoder),
    output:
        features=directory("results/features/{encoder}/{slide}.zarr"),
    log:
        "results/logs/features/{encoder}/{slide}.log",
    benchmark:
        "results/benchmarks/features/{encoder}/{slide}.tsv"
    wildcard_constraints:
        encoder=alternatives(ENCODERS),
    conda:
        "../../envs/tensorflow-cpu.yaml"
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code_version("features"),
        encoder=lambda wildcards: config["encoders"][wildcards.encoder],
        tf_threads=config["tf_threads"],
    script:
        "../../scripts/features.py"


# a patch dataset's name as a file name is its images' store, not a slide's
ruleorder: features_patches > features


rule features_patches:
    input:
        entries=renamed(rules.entries.output.entries, name="dataset"),
        weights=lambda wildcards: encoder_files(wildcards.encoder),
        keras=lambda wildcards: encoder_model(wildcards.encoder),
    output:
        features=directory("results/features/{encoder}/{dataset}.zarr"),
    log:
        "results/logs/features_patches/{encoder}/{dataset}.log",
    wildcard_constraints:
        encoder=alternatives(ENCODERS),
        dataset=alternatives(PATCH_DATASETS),
    conda:
        "../../envs/tensorflow-cpu.yaml"
    threads: config["tf_threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code_version("features_patches"),
        encoder=lambda wildcards: config["encoders"][wildcards.encoder],
        image_size=image_size,
        mpp=lambda wildcards: config["datasets"][wildcards.dataset]["patches"]["mpp"],
        tf_threads=config["tf_threads"],
    script:
        "../../scripts/features_patches.py"
