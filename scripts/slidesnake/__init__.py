"""slidesnake: whole-slide images to tile stores, models and tumor probability maps."""

__version__ = "0.1.0"
