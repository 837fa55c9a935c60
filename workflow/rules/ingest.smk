# Stages 1-3: one ingest job per slide (slide facts, tissue detection, tiling into Zarr, one log)
# writes the slide's folder (info.json, thumbnail, tissue mask and QC, tile grid, tiling QC) and its
# tile store; then the audit table. One job, not three: planning a 10,000-slide study costs
# Snakemake's per-job work, and every job start costs the imports. A slide that cannot be used
# (unreadable, no MPP, no tissue, smaller than a tile) is carried through with empty outputs and its
# reason (config on_bad_slide: skip), or fails its job (on_bad_slide: fail). Only ingest reads the
# slide file's date (ancient: a touched or re-copied slide is not read again, one of another size is);
# the others read its path from info.json, whose content changes only when the slide's content does.


rule ingest:
    input:
        slide=lambda wildcards: ancient(slide_file(wildcards)),
    output:
        slide=directory("results/slides/{slide}"),
        store=directory("results/tiles/{slide}.zarr"),
    log:
        "results/logs/ingest/{slide}.log",
    benchmark:
        "results/benchmarks/ingest/{slide}.tsv"
    conda:
        "../../envs/slidesnake.yaml"
    threads: 2
    resources:
        mem_mb=4000,  # bounded: the mask at 8 um/px and a few decoded blocks per thread, never the slide
        runtime=120,
    params:
        code=code_version("ingest"),
        slide_settings=ingest_settings,
        mpp_override=config["resolution"]["mpp_override"],
        tissue=config["tissue"],
        on_bad_slide=config["on_bad_slide"],
    script:
        "../../scripts/ingest.py"


rule audit:
    input:
        slides=expand(rules.ingest.output.slide, slide=SLIDES),
        # the slides label_tiles quarantined for their annotations (its folder's @quarantine.tsv)
        labels=expand("results/labels/{name}", name=LABELLED_HOMES),
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
        qc=config["qc"],
        # each slide's dataset: QC compares a slide with the median slide of its dataset (its site, scanner)
        datasets=dict(zip(sheet["slide_id"], sheet["dataset"])),
    script:
        "../../scripts/audit.py"
