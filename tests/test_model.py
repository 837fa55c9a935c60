import numpy as np
import pandas as pd
import pytest

from conftest import CMU, defaults
from slidesnake.errors import ModelError
from slidesnake.model.build import build_backbone, build_model, ensemble_model
from slidesnake.model.data import pipeline
from slidesnake.model.fit import feature_model, predict_probabilities, set_determinism, train_model
from slidesnake.pixels import pixel_source, store_entries
from slidesnake.settings import AugmentSettings, ModelSettings, ResolutionPolicy
from slidesnake.store import TileStore
from slidesnake.store.codecs import make_codec
from slidesnake.store.writer import write_tile_store
from slidesnake.wsi import plan_tiling
from slidesnake.wsi.probe import read_slide_info


def settings(**overrides) -> ModelSettings:
    """The default model settings (the schema's) with some keys changed."""
    return ModelSettings.from_config({**defaults("model"), "input_size": 32, "augment": None, **overrides})


SMALL = settings()


def backbone(name, input_size=64, weights=None):
    return build_backbone(name, input_size=input_size, weights=weights, alpha=1.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    info = read_slide_info(CMU, "CMU-1")
    plan = plan_tiling(info, ResolutionPolicy.from_config(defaults("resolution")), 64)
    grid = pd.DataFrame([(r, c) for r in range(4, 8) for c in range(2, 8)], columns=["row", "col"])
    grid["y"], grid["x"] = grid["row"] * 64, grid["col"] * 64
    grid["x0"], grid["y0"], grid["tissue_fraction"] = grid["x"], grid["y"], 1.0
    path = tmp_path_factory.mktemp("model") / "CMU-1.zarr"
    codec = make_codec("zstd", jpeg_quality=90)
    write_tile_store(
        info=info, plan=plan, tiles=grid, path=path, codec=codec, threads=1, jpeg_dct_scaling=True
    )
    return str(path), store_entries(path)


def tiles(path, entries, batch, labels=None, **options):
    return pipeline(pixel_source(entries), batch_size=batch, labels=labels, **options)


def test_model_outputs_class_probabilities():
    model = build_model(SMALL, tile_size=64, classes=["normal", "tumor"])
    probabilities = model.predict(np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3)), verbose=0)
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_an_ensemble_saved_and_loaded_is_the_mean_of_its_fold_models(tmp_path):
    import keras

    members = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        members.append(build_model(SMALL, tile_size=64, classes=["normal", "tumor"]))
    ensemble_model(members, name="ensemble").save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras")
    pixels = np.random.default_rng(1).integers(0, 255, (6, 64, 64, 3)).astype(np.uint8)
    each = np.stack([m.predict(pixels, verbose=0) for m in members])
    assert np.abs(each[0] - each[1]).max() > 1e-3  # the members differ, so the mean means something
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), each.mean(axis=0), atol=1e-6)
    features = feature_model(loaded).predict(pixels, verbose=0)
    first = feature_model(members[0]).predict(pixels, verbose=0)
    assert features.shape == (6, 3 * first.shape[1])
    np.testing.assert_allclose(features[:, : first.shape[1]], first, atol=1e-5)


@pytest.mark.parametrize("name", ["small_cnn", "mobilenet_v2"])
def test_weights_load_from_a_local_file(tmp_path, name):
    source, _ = backbone(name)
    path = tmp_path / f"{name}.weights.h5"
    source.save_weights(path)
    loaded, _ = backbone(name, weights=str(path))
    fresh, _ = backbone(name)
    for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(source.get_weights(), fresh.get_weights(), strict=True)
    )
    model = build_model(
        settings(backbone=name, input_size=64, weights=str(path)), tile_size=64, classes="abc"
    )
    assert model.output_shape == (None, 3)


def test_bad_weights_settings_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="model: weights.*weights file not found"):
        backbone("small_cnn", weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(ModelError, match="no imagenet weights"):
        backbone("small_cnn", weights="imagenet")
    with pytest.raises(ModelError, match="not one of"):
        backbone("vgg99")


def test_tile_dataset_streams_the_stored_pixels(store):
    path, entries = store
    batches = list(tiles(path, entries, 10, labels=np.arange(len(entries)) % 2))
    assert [b[0].shape[0] for b in batches] == [10, 10, 4]
    streamed = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_array_equal(streamed, TileStore(path).read_tiles(entries).astype(np.float32))
    np.testing.assert_array_equal(
        np.concatenate([b[1].numpy() for b in batches]), np.arange(len(entries)) % 2
    )


def test_training_is_deterministic_and_predictions_are_probabilities(store):
    path, entries = store
    labels = (entries["col"] >= 5).to_numpy().astype(int)
    augment = AugmentSettings(flips=True, rotations=True, color_jitter=0.05, hed_scale=0.1, hed_shift=0.02)
    two_epochs = settings(epochs=2, learning_rate=1e-3)
    histories, predictions = [], []
    for _ in range(2):
        set_determinism(3)
        model = build_model(SMALL, tile_size=64, classes=["left", "right"])
        train = tiles(path, entries, 8, labels, shuffle_seed=3, augment=augment)
        histories.append(train_model(model, train, None, settings=two_epochs, class_weight=None))
        predictions.append(predict_probabilities(model, tiles(path, entries, 8)))
    pd.testing.assert_frame_equal(histories[0], histories[1])
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert predictions[0].shape == (len(entries), 2)
    assert list(histories[0]["epoch"]) == [1, 2]


def test_frozen_phase_then_fine_tuning_of_the_last_layers(store, tmp_path):
    path, entries = store
    source, _ = backbone("small_cnn", 32)
    weights = tmp_path / "pretrained.weights.h5"
    source.save_weights(weights)
    transfer = settings(
        weights=str(weights), epochs=3, learning_rate=1e-3, frozen_epochs=2, unfreeze=3, optimizer="sgd"
    )
    model = build_model(transfer, tile_size=64, classes=["left", "right"])
    labels = (entries["col"] >= 5).to_numpy().astype(int)
    train = tiles(path, entries, 8, labels, shuffle_seed=0)
    history = train_model(model, train, None, settings=transfer, class_weight=None)
    assert history["phase"].tolist() == ["frozen", "frozen", "trained"]
    assert history["epoch"].tolist() == [1, 2, 3]
    layers = model.get_layer("backbone").layers
    # the frozen epochs left the pretrained backbone as it was only if nothing else changed it since:
    # after fine-tuning, exactly the last 3 layers were trainable
    assert [layer.trainable for layer in layers[-3:]] == [True, True, True]
    assert not any(layer.trainable for layer in layers[:-3])


def test_frozen_backbone_does_not_change(store, tmp_path):
    path, entries = store
    frozen = settings(epochs=1, learning_rate=1e-2, frozen_epochs=1)
    model = build_model(frozen, tile_size=64, classes=["left", "right"])
    before = [w.copy() for w in model.get_layer("backbone").get_weights()]
    head_before = model.get_layer("probabilities").get_weights()[0].copy()
    train = tiles(path, entries, 8, np.zeros(len(entries), int), shuffle_seed=0)
    train_model(model, train, None, settings=frozen, class_weight=None)
    for a, b in zip(before, model.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("probabilities").get_weights()[0])


def test_resnet50_caffe_preprocessing_survives_save_and_load(tmp_path):
    import keras

    model = build_model(settings(backbone="resnet50", input_size=64), tile_size=64, classes=["a", "b"])
    model.save(tmp_path / "resnet.keras")
    loaded = keras.models.load_model(tmp_path / "resnet.keras")
    batch = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(model(batch, training=False), loaded(batch, training=False), rtol=1e-5)


def test_whole_slide_prediction_read_shard_by_shard_equals_the_tile_pipeline(tmp_path):
    """Oracle: the predict stage's shard-window reads give the probabilities the per-tile pipeline gives."""
    from slidesnake.model.classifier import TileClassifier, store_probabilities

    info = read_slide_info(CMU, "CMU-1")
    plan = plan_tiling(info, ResolutionPolicy.from_config(defaults("resolution")), 32)
    block = range(22, 42)  # a square of tiles across the borders of four shards (32 tiles a side)
    grid = pd.DataFrame([(r, c) for r in block for c in block], columns=["row", "col"])
    grid["y"], grid["x"] = grid["row"] * 32, grid["col"] * 32
    grid["x0"], grid["y0"], grid["tissue_fraction"] = grid["x"], grid["y"], 1.0
    path = tmp_path / "CMU-1.zarr"
    write_tile_store(
        info=info,
        plan=plan,
        tiles=grid,
        path=path,
        codec=make_codec("zstd", jpeg_quality=90),
        threads=1,
        jpeg_dct_scaling=True,
    )
    model = build_model(SMALL, tile_size=32, classes=["normal", "tumor"])
    for stride in (16, None):  # shifted tiles too, some across shard borders (Zarr reads); the grid's
        entries = store_entries(path, stride=stride)  # tiles alone (the shard reader)
        assert TileStore(path).image.shards == (1024, 1024, 3)
        assert (~entries["aligned"]).sum() > 1000 if stride else entries["aligned"].all()
        expected = predict_probabilities(model, tiles(path, entries, 64))
        found = store_probabilities(TileClassifier(model), TileStore(path), entries)
        np.testing.assert_allclose(found, expected, atol=1e-5)


def test_hed_augmentation_in_the_pipeline_is_seeded_and_changes_the_stain(store):
    path, entries = store
    hed = AugmentSettings(flips=False, rotations=False, color_jitter=0.0, hed_scale=0.2, hed_shift=0.02)
    off = AugmentSettings(flips=False, rotations=False, color_jitter=0.0, hed_scale=0.0, hed_shift=0.0)

    def first_epoch(augment, seed):
        batches = tiles(path, entries, 8, np.zeros(len(entries), int), shuffle_seed=seed, augment=augment)
        return np.concatenate([b[0].numpy() for b in batches])

    same, again, other = first_epoch(hed, 3), first_epoch(hed, 3), first_epoch(hed, 4)
    np.testing.assert_array_equal(same, again)
    plain = first_epoch(off, 3)
    assert np.isfinite(same).all() and same.min() >= 0 and same.max() <= 255
    assert np.abs(same - plain).mean() > 1.0  # the stain really moved
    assert np.abs(same - plain).mean() < 25.0  # ... and did not explode
    assert not np.array_equal(np.sort(same.ravel()), np.sort(other.ravel()))


def test_a_model_loaded_from_disk_normalizes_as_in_training(tmp_path):
    import keras
    from PIL import Image

    from conftest import SHARED
    from slidesnake.stain import fit_target, normalize

    folder = SHARED / "tiles" / "kather2016-texture" / "01_TUMOR"
    raw = [np.asarray(Image.open(f).convert("RGB"))[:64, :64] for f in sorted(folder.iterdir())[:6]]
    target = fit_target(raw[:3], "macenko")
    model = build_model(SMALL, tile_size=64, classes=["normal", "tumor"], stain=target)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    batch = np.stack(raw).astype(np.float32)
    expected = np.stack([normalize(tile, target) for tile in raw]).astype(np.float32)
    assert np.abs(expected - batch).mean() > 0.5  # normalization changes these tiles
    for candidate in (model, loaded):
        np.testing.assert_array_equal(candidate.get_layer("stain")(batch).numpy(), expected)
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-6)
    stripped = keras.Model(model.get_layer("stain").output, model.output)  # the same model after the layer
    np.testing.assert_allclose(
        loaded.predict(batch, verbose=0), stripped.predict(expected, verbose=0), atol=1e-5
    )
