# Stages 1-3: slide metadata and resolution policy, tissue detection, tiling into Zarr.
# A slide that cannot be read fails its own jobs with the slide id and file in the log;
# with --keep-going (profiles/local) the other slides go on.


rule slide_info:
    input:
        slide_file,
    output:
        "results/slides/{slide}/info.json",
    params:
        resolution=config["resolution"],
        sheet_mpp=lambda wildcards: sheet_value(wildcards.slide, "mpp"),
    log:
        "results/logs/slide_info/{slide}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/slide_info.py"


rule tissue:
    input:
        info="results/slides/{slide}/info.json",
        slide=slide_file,
    output:
        thumbnail="results/slides/{slide}/thumbnail.png",
        mask="results/slides/{slide}/tissue_mask.png",
        grid="results/slides/{slide}/tile_grid.tsv",
        qc="results/slides/{slide}/tissue_qc.json",
    params:
        tissue=config["tissue"],
        tile_size=config["tiling"]["tile_size"],
    log:
        "results/logs/tissue/{slide}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/tissue.py"


rule tile:
    input:
        info="results/slides/{slide}/info.json",
        grid="results/slides/{slide}/tile_grid.tsv",
        slide=slide_file,
    output:
        store=directory("results/tiles/{slide}.zarr"),
        qc="results/slides/{slide}/tiling_qc.json",
    params:
        tiling=config["tiling"],
    log:
        "results/logs/tile/{slide}.log",
    benchmark:
        "results/benchmarks/tile/{slide}.tsv"
    threads: 2
    resources:
        mem_mb=2000,  # bounded: a few decoded blocks per thread, never the slide
        runtime=120,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/tile.py"


rule audit:
    input:
        info=expand("results/slides/{slide}/info.json", slide=SLIDES),
        tissue=expand("results/slides/{slide}/tissue_qc.json", slide=SLIDES),
        tiling=expand("results/slides/{slide}/tiling_qc.json", slide=SLIDES),
    output:
        report(
            "results/slides.tsv",
            caption="../report/slides.rst",
            category="Slides",
        ),
    log:
        "results/logs/audit.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/slidesnake.yaml"
    script:
        "../../scripts/audit.py"
