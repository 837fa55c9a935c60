"""Stage 6a: tile features from pretrained or study-trained encoders (config ``encoders``).

Import the defining modules (e.g. :mod:`slidesnake.features.encoders`); this package re-exports nothing.
"""
