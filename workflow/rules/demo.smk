# The demo study: slides and annotations the workflow generates itself (config `demo_dir`).
if config["demo_dir"]:

    rule demo_slide:
        output:
            slide=f"{config['demo_dir']}/{{slide}}.svs",
            annotations=f"{config['demo_dir']}/{{slide}}.geojson",
        log:
            "results/logs/demo_slide/{slide}.log",
        conda:
            "../../envs/slidesnake.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            code=code_version("demo_slide"),
            dataset=home_of,
            small=config["demo_small"],
        script:
            "../../scripts/demo_slide.py"
