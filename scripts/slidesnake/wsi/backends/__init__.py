"""Pixel backends of :class:`slidesnake.wsi.SlideReader`: tifffile (fast path) and OpenSlide."""
