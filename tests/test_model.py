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

SMALL = {"backbone": "small_cnn", "input_size": 32, "weights": None}


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
    model = build_model(SMALL, 64, ["normal", "tumor"])
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
    model = build_model({"backbone": backbone, "input_size": 64, "weights": str(path)}, 64, ["a", "b", "c"])
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
        model = build_model(SMALL, 64, ["left", "right"])
        train = tile_dataset([path], entries, 64, 8, labels, shuffle_seed=3, augment={"color_jitter": 0.05})
        histories.append(train_model(model, train, None, {"epochs": 2, "learning_rate": 1e-3}))
        predictions.append(predict_probabilities(model, tile_dataset([path], entries, 64, 8)))
    pd.testing.assert_frame_equal(histories[0], histories[1])
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert predictions[0].shape == (len(grid), 2)
    assert list(histories[0]["epoch"]) == [1, 2]


def test_frozen_phase_then_fine_tuning_of_the_last_layers(store, tmp_path):
    path, grid = store
    source, _ = build_backbone("small_cnn", 32, None)
    weights = tmp_path / "pretrained.weights.h5"
    source.save_weights(weights)
    settings = {
        "backbone": "small_cnn",
        "input_size": 32,
        "weights": str(weights),
        "epochs": 3,
        "learning_rate": 1e-3,
        "frozen_epochs": 2,
        "unfreeze": 3,
        "optimizer": "sgd",
    }
    model = build_model(settings, 64, ["left", "right"])
    labels = (grid["col"] >= 5).to_numpy().astype(int)
    train = tile_dataset([path], grid.assign(store=0), 64, 8, labels, shuffle_seed=0)
    history = train_model(model, train, None, settings)
    assert history["phase"].tolist() == ["frozen", "frozen", "trained"]
    assert history["epoch"].tolist() == [1, 2, 3]
    backbone = model.get_layer("backbone")
    # the frozen epochs left the pretrained backbone as it was only if nothing else changed it since:
    # after fine-tuning, exactly the last 3 layers were trainable
    assert [layer.trainable for layer in backbone.layers[-3:]] == [True, True, True]
    assert not any(layer.trainable for layer in backbone.layers[:-3])


def test_frozen_backbone_does_not_change(store, tmp_path):
    path, grid = store
    settings = {
        "backbone": "small_cnn",
        "input_size": 32,
        "weights": None,
        "epochs": 1,
        "learning_rate": 1e-2,
        "frozen_epochs": 1,
    }
    model = build_model(settings, 64, ["left", "right"])
    before = [w.copy() for w in model.get_layer("backbone").get_weights()]
    head_before = model.get_layer("probabilities").get_weights()[0].copy()
    train = tile_dataset([path], grid.assign(store=0), 64, 8, np.zeros(len(grid), int), shuffle_seed=0)
    train_model(model, train, None, settings)
    for a, b in zip(before, model.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("probabilities").get_weights()[0])


def test_resnet50_caffe_preprocessing_survives_save_and_load(tmp_path):
    import keras

    model = build_model({"backbone": "resnet50", "input_size": 64, "weights": None}, 64, ["a", "b"])
    model.save(tmp_path / "resnet.keras")
    loaded = keras.models.load_model(tmp_path / "resnet.keras")
    batch = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(model(batch, training=False), loaded(batch, training=False), rtol=1e-5)
