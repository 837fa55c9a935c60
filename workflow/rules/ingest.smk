# Stages 1-3: slide facts, tissue detection, tiling into Zarr, and the audit table.
# A slide that cannot be read fails its own jobs with the slide id and file in the log;
# with --keep-going (profiles/local) the other slides go on.


rule slide_info:
    input:
        slide=slide_file,
    output:
        info="results/slides/{slide}/info.json",
    log:
        "results/logs/slide_info/{slide}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=20,
    params:
        code=code_version("slide_info"),
        sheet_mpp=lambda wildcards: sheet_value(wildcards.slide, "mpp"),
        mpp_override=config["resolution"]["mpp_override"],
    script:
        "../../scripts/slide_info.py"


rule tissue:
    input:
        info="results/slides/{slide}/info.json",
        slide=slide_file,
    output:
        thumbnail="results/slides/{slide}/thumbnail.png",
        mask="results/slides/{slide}/tissue_mask.png",
        qc="results/slides/{slide}/tissue_qc.json",
    log:
        "results/logs/tissue/{slide}.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        code=code_version("tissue"),
        tissue=config["tissue"],
    script:
        "../../scripts/tissue.py"


rule tile:
    input:
        info="results/slides/{slide}/info.json",
        mask="results/slides/{slide}/tissue_mask.png",
        tissue_qc="results/slides/{slide}/tissue_qc.json",
        slide=slide_file,
    output:
        store=directory("results/tiles/{slide}.zarr"),
        grid="results/slides/{slide}/tile_grid.tsv",
        qc="results/slides/{slide}/tiling_qc.json",
    log:
        "results/logs/tile/{slide}.log",
    benchmark:
        "results/benchmarks/tile/{slide}.tsv"
    conda:
        "../../envs/slidesnake.yaml"
    threads: 2
    resources:
        mem_mb=2000,  # bounded: a few decoded blocks per thread, never the slide
        runtime=120,
    params:
        code=code_version("tile"),
        resolution=resolution_of,
        tiling=tiling_of,
        min_tissue_fraction=config["tissue"]["min_tissue_fraction"],
    script:
        "../../scripts/tile.py"


rule audit:
    input:
        info=expand("results/slides/{slide}/info.json", slide=SLIDES),
        tissue=expand("results/slides/{slide}/tissue_qc.json", slide=SLIDES),
        tiling=expand("results/slides/{slide}/tiling_qc.json", slide=SLIDES),
    output:
        table="results/slides.tsv",
    log:
        "results/logs/audit.log",
    conda:
        "../../envs/slidesnake.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code_version("audit"),
    script:
        "../../scripts/audit.py"
