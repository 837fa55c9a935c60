"""Rule predict_external: another dataset's slide through a cohort's model: tiles, scores, maps, exports."""

from slidesnake.rules import run
from slidesnake.rules.predict import predict_external
from slidesnake.slide_folder import slide_file

run(
    snakemake,
    predict_external,
    model_path=snakemake.input.keras,
    model_json=snakemake.input.model_config,
    store=snakemake.input.store,
    annotation_files=snakemake.input.annotations,
    labels=snakemake.params.labels,
    slide_label=snakemake.params.slide_label,
    model=snakemake.params.model,
    classes=snakemake.params.classes,
    positive_class=snakemake.params.positive_class,
    prediction=snakemake.params.prediction,
    tolerance=snakemake.params.tolerance,
    tiles_tsv=snakemake.output.tiles,
    scores_json=snakemake.output.scores,
    cohort=snakemake.wildcards.cohort,
    info_json=slide_file(snakemake.input.slide, "info"),
    thumbnail_png=slide_file(snakemake.input.slide, "thumbnail"),
    heatmap_jpg=snakemake.output.heatmap,
    classmap_jpg=snakemake.output.classmap,
    qupath_geojson=snakemake.output.qupath,
    threads=snakemake.params.tf_threads,
)
