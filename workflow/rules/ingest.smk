# Stages 1-3: slide facts, tissue detection, tiling into Zarr, and the audit table.
# A slide that cannot be used (unreadable, no MPP, no tissue, smaller than a tile) is carried
# through with empty outputs and its reason (config on_bad_slide: skip), or fails its own jobs
# (on_bad_slide: fail). Only slide_info reads the slide file's date: the others read its path
# from info.json, whose content (and checksum) changes only when the slide's content does.


rule slide_info:
    input:
        slide=lambda wildcards: ancient(slide_file(wildcards)),
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
        file_size=slide_file_size,
        on_bad_slide=config["on_bad_slide"],
    script:
        "../../scripts/slide_info.py"


rule tissue:
    input:
        info="results/slides/{slide}/info.json",
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
        on_bad_slide=config["on_bad_slide"],
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
