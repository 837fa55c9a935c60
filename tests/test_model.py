import numpy as np
import pandas as pd
import pytest

from conftest import CMU
from slidesnake.model import (
    build_backbone,
    build_model,
    predict_probabilities,
    set_determinism,
    tile_dataset,
    train_model,
)
from slidesnake.slide import read_slide_info
from slidesnake.tiling import open_image, read_tiles, write_tile_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    info = read_slide_info(CMU, "CMU-1")
    grid = pd.DataFrame([(r, c) for r in range(4, 8) for c in range(2, 8)], columns=["row", "col"])
    grid["y"], grid["x"] = grid["row"] * 64, grid["col"] * 64
    grid["x0"], grid["y0"], grid["tissue_fraction"] = grid["x"], grid["y"], 1.0
    path = tmp_path_factory.mktemp("model") / "CMU-1.zarr"
    write_tile_store(info, grid, 64, path)
    return str(path), grid


def test_model_outputs_class_probabilities():
    model = build_model("small_cnn", 32, 64, ["normal", "tumor"])
    probabilities = model.predict(np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3)), verbose=0)
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("backbone", ["small_cnn", "mobilenet_v2"])
def test_weights_load_from_a_local_file(tmp_path, backbone):
    source, _ = build_backbone(backbone, 64, None)
    path = tmp_path / f"{backbone}.weights.h5"
    source.save_weights(path)
    loaded, _ = build_backbone(backbone, 64, str(path))
    fresh, _ = build_backbone(backbone, 64, None)
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(source.get_weights(), fresh.get_weights(), strict=True)
    )
    model = build_model(backbone, 64, 64, ["a", "b", "c"], weights=str(path))
    assert model.output_shape == (None, 3)


def test_bad_weights_settings_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_backbone("small_cnn", 64, str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ValueError, match="no imagenet weights"):
        build_backbone("small_cnn", 64, "imagenet")
    with pytest.raises(ValueError, match="not one of"):
        build_backbone("vgg99", 64, None)


def test_tile_dataset_streams_the_stored_pixels(store):
    path, grid = store
    entries = grid.assign(store=0)
    batches = list(tile_dataset([path], entries, 64, 10, labels=np.arange(len(grid)) % 2))
    assert [b[0].shape[0] for b in batches] == [10, 10, 4]
    tiles = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(tiles, read_tiles(open_image(path), grid, 64).astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), np.arange(len(grid)) % 2)


def test_training_is_deterministic_and_predictions_are_probabilities(store):
    path, grid = store
    entries = grid.assign(store=0)
    labels = (grid["col"] >= 5).to_numpy().astype(int)
    histories, predictions = [], []
    for _ in range(2):
        set_determinism(3)
        model = build_model("small_cnn", 32, 64, ["left", "right"])
        train = tile_dataset([path], entries, 64, 8, labels, shuffle_seed=3, augment={"color_jitter": 0.05})
        histories.append(train_model(model, train, None, epochs=2, learning_rate=1e-3))
        predictions.append(predict_probabilities(model, tile_dataset([path], entries, 64, 8)))
    pd.testing.assert_frame_equal(histories[0], histories[1])
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert predictions[0].shape == (len(grid), 2)
    assert list(histories[0]["epoch"]) == [1, 2]
