# The demo study: slides and annotations the workflow generates itself (config `demo_dir`).
if config.get("demo_dir"):

    rule demo_slide:
        output:
            slide=f"{DEMO_DIR}/{{slide}}.svs",
            annotations=f"{DEMO_DIR}/{{slide}}.geojson",
        params:
            dataset=lambda wildcards: sheet.at[wildcards.slide, "dataset"],
        log:
            "results/logs/demo_slide/{slide}.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/slidesnake.yaml"
        script:
            "../../scripts/demo_slide.py"
