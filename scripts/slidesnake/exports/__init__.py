"""Per-slide exports for review in other tools: QuPath GeoJSON and OME-TIFF probability overlays."""
