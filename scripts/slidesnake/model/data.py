"""The input pipeline: a :class:`~slidesnake.entries.PixelSource` as batched, prefetched ``tf.data``."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from ..pixels import PixelSource  # noqa: E402
from ..settings import AugmentSettings  # noqa: E402
from ..stain import hed_augment  # noqa: E402


def pipeline(
    source: PixelSource,
    *,
    batch_size: int,
    labels: np.ndarray | None = None,
    shuffle_seed: int | None = None,
    augment: AugmentSettings | None = None,
) -> tf.data.Dataset:
    """Shuffle entries, read them in parallel (in order), augment, batch and prefetch.

    Parameters
    ----------
    source : PixelSource
        The entries' pixels (tiles from Zarr stores, or image files).
    batch_size : int
        Entries per batch.
    labels : numpy.ndarray, optional
        Integer class per entry; without it the dataset yields pixels only.
    shuffle_seed : int, optional
        Shuffle the entries with this seed (each epoch reshuffles, reproducibly).
    augment : AugmentSettings, optional
        Stain augmentation in HED space, flips, 90-degree rotations and colour jitter, seeded per
        element (the same seed gives the same batches).

    Returns
    -------
    tf.data.Dataset
        Batches of float32 (batch, row, column, 3) pixels 0-255 (and labels).
    """
    size = source.size
    read = source.read

    def load(*entry: tf.Tensor) -> tf.Tensor:
        pixels = tf.numpy_function(read, list(entry), tf.uint8, stateful=False)
        pixels.set_shape((size, size, 3))
        return tf.cast(pixels, tf.float32)

    count = len(source.columns[0])
    targets = np.full(count, -1, np.int32) if labels is None else labels.astype(np.int32)
    data = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices(source.columns), tf.data.Dataset.from_tensor_slices(targets)
    )
    if shuffle_seed is not None:
        data = data.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    if augment is not None:
        randomness = tf.data.Dataset.random(seed=shuffle_seed or 0, rerandomize_each_iteration=True)
        change = _augmenter(augment)
        data = tf.data.Dataset.zip(data, randomness).map(
            lambda item, r: (change(load(*item[0]), r), item[1]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        data = data.map(
            lambda entry, target: (load(*entry), target),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if labels is None:
        data = data.map(lambda pixels, _: pixels)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _augmenter(options: AugmentSettings) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """HED stain augmentation, flips, 90-degree rotations and colour jitter, seeded per element from one
    random int64."""
    jitter = float(options.color_jitter)
    hed = options.hed_scale > 0 or options.hed_shift > 0

    def stain(pixels: np.ndarray, randomness: np.int64) -> np.ndarray:
        rng = np.random.default_rng([int(randomness) & (2**63 - 1), 4])
        tile = hed_augment(pixels.astype(np.uint8), rng, scale=options.hed_scale, shift=options.hed_shift)
        return tile.astype(np.float32)

    def augment(pixels: tf.Tensor, randomness: tf.Tensor) -> tf.Tensor:
        seeds = [tf.stack([randomness, tf.constant(k, tf.int64)]) for k in range(4)]
        if hed:
            shape = pixels.shape
            pixels = tf.numpy_function(stain, [pixels, randomness], tf.float32, stateful=False)
            pixels.set_shape(shape)
        if options.flips:
            pixels = tf.image.stateless_random_flip_left_right(pixels, seeds[0])
            pixels = tf.image.stateless_random_flip_up_down(pixels, seeds[1])
        if options.rotations:
            pixels = tf.image.rot90(pixels, tf.random.stateless_uniform((), seeds[2], 0, 4, dtype=tf.int32))
        if jitter > 0:
            shift = tf.random.stateless_uniform((3,), seeds[3], -jitter, jitter) * 255.0
            pixels = tf.clip_by_value(pixels + shift, 0.0, 255.0)
        return pixels

    return augment
