"""Slide-level learning: attention MIL (Ilse et al. 2018) and a mean-pooling baseline on stored tile features.

Modules: :mod:`.settings` (the config's ``mil`` section), :mod:`.bags` (bags of tile features, padding),
:mod:`.network` (the Keras models and their training), :mod:`.crossval` (folds x seeds, out-of-fold
predictions and attention), :mod:`.evaluation` (slide and patient metrics, attention against annotations)
and :mod:`.maps` (attention maps, tile montages, QuPath tiles).
"""
