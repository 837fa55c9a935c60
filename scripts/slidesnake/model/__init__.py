"""Keras models of tiles and images: build (backbones), data (tf.data from any pixel source), fit."""
