"""Rule predict: a slide through its model: tiles, class maps, heatmaps, scores, QuPath and OME-TIFF."""

from slidesnake.rules import run
from slidesnake.rules.predict import predict
from slidesnake.slide_folder import slide_file

run(
    snakemake,
    predict,
    model_path=snakemake.input.keras,
    model_json=snakemake.input.model_config,
    store=snakemake.input.store,
    info_json=slide_file(snakemake.input.slide, "info"),
    thumbnail_png=slide_file(snakemake.input.slide, "thumbnail"),
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
    map_store=snakemake.output.map,
    heatmap_jpg=snakemake.output.heatmap,
    classmap_jpg=snakemake.output.classmap,
    qupath_geojson=snakemake.output.qupath,
    overlay_tif=snakemake.output.overlay,
    threads=snakemake.params.tf_threads,
)
