"""The linear probe against scikit-learn, its Keras form, starting a network from another's weights, and the
parse-time refusals of model kinds (:mod:`slidesnake.regimes`)."""

import copy

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from conftest import ROOT, defaults, validated_config
from slidesnake.errors import ModelError, StudyError
from slidesnake.model.build import build_model, start_from
from slidesnake.model.probe import fit_probe, probe_model
from slidesnake.regimes import check_models
from slidesnake.settings import ModelSettings

CLASSES = ["a", "b", "c"]


def _data(seed, n, k=3, dim=12):
    columns = np.random.default_rng(99)  # the same feature scales and offsets in every draw
    scale, offset = columns.uniform(0.5, 20, dim), columns.normal(0, 5, dim)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, dim))
    x[:, 0] += 3 * y
    x[:, 1] -= 2 * y
    x = x * scale + offset  # unscaled, offset features, as an encoder gives them
    return x.astype(np.float32), y


def test_the_logistic_probe_is_scikit_learns_logistic_regression_on_standardised_features():
    """Oracle: the folded probe gives scikit-learn's predict_proba, at the C it chose on validation."""
    train_x, train_y = _data(0, 500)
    val_x, val_y = _data(1, 200)
    probe = fit_probe(
        train_x, train_y, val_x, val_y, classes=CLASSES, classifier="logistic", balanced=True, seed=1
    )
    train_x, val_x = train_x.astype(np.float64), val_x.astype(np.float64)
    scaler = StandardScaler().fit(train_x)
    oracle = LogisticRegression(C=probe.c, class_weight="balanced", max_iter=2000, random_state=1)
    oracle.fit(scaler.transform(train_x), train_y)
    expected = oracle.predict_proba(scaler.transform(val_x))
    np.testing.assert_allclose(probe.probabilities(val_x), expected, atol=1e-4)
    chosen = probe.history[probe.history["chosen"]]
    assert chosen["val_loss"].iloc[0] == probe.history["val_loss"].min()


@pytest.mark.parametrize("classifier", ["logistic", "svm"])
@pytest.mark.parametrize("k", [2, 3])
def test_a_probe_learns_a_planted_signal_and_its_keras_form_agrees(classifier, k):
    classes = CLASSES[:k]
    train_x, train_y = _data(2, 400, k)
    val_x, val_y = _data(3, 200, k)
    probe = fit_probe(
        train_x, train_y, val_x, val_y, classes=classes, classifier=classifier, balanced=True, seed=1
    )
    found = probe.probabilities(val_x)
    assert found.shape == (200, k) and np.allclose(found.sum(axis=1), 1, atol=1e-5)
    assert (found.argmax(axis=1) == val_y).mean() > 0.8
    keras_found = probe_model(probe, name="probe").predict(val_x, verbose=0)
    np.testing.assert_allclose(keras_found, found, atol=1e-5)


def test_a_probe_refuses_a_single_training_class():
    x, _ = _data(4, 50)
    with pytest.raises(ModelError, match="two classes"):
        fit_probe(
            x,
            np.zeros(50, int),
            x,
            np.zeros(50, int),
            classes=CLASSES,
            classifier="logistic",
            balanced=True,
            seed=1,
        )


def test_a_network_starts_from_another_models_weights_layer_by_layer():
    settings = ModelSettings.from_config({**defaults("model"), "input_size": 32, "augment": None})
    trained = build_model(settings, tile_size=32, classes=["n", "t"])
    fresh = build_model(settings, tile_size=32, classes=["n", "t"])
    tiles = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)).astype("float32")
    assert not np.allclose(fresh(tiles, training=False), trained(tiles, training=False))
    copied = start_from(fresh, trained, source="trained")
    assert copied >= 4
    np.testing.assert_allclose(fresh(tiles, training=False), trained(tiles, training=False), atol=1e-6)
    other = build_model(
        ModelSettings.from_config(
            {**defaults("model"), "backbone": "mobilenet_v2", "input_size": 32, "augment": None}
        ),
        tile_size=32,
        classes=["n", "t"],
    )
    with pytest.raises(ModelError, match="is not this model's architecture"):
        start_from(other, trained, source="trained")


def _study(**site_b_model):
    config = copy.deepcopy(validated_config())
    config["encoders"]["enc"] = {"source": "dataset", "dataset": "site_a"}
    config["datasets"]["site_b"]["model"] = site_b_model
    config["datasets"]["site_b"]["regimes"] = {}
    return config


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"kind": "probe"}, "datasets: site_b: model: encoder: a probe needs one"),
        ({"kind": "probe", "encoder": "uni"}, "datasets: site_b: model: encoder: 'uni' is not an encoder"),
        ({"encoder": "enc"}, "datasets: site_b: model: encoder: only a probe"),
        (
            {"kind": "probe", "encoder": "enc", "init": "site_a"},
            "init: a probe does not start from a network",
        ),
        ({"init": "site_b"}, "datasets: site_b: model: init: 'site_b' is this dataset itself"),
        ({"init": "nowhere"}, "init: 'nowhere' is neither a dataset"),
        ({"init": "models/missing.keras"}, "init: file not found"),
        ({"kind": "pretrained"}, "a pretrained model needs the entry of config encoders"),
        (
            {"kind": "pretrained", "encoder": "enc"},
            "'enc' is a dataset; a pretrained model is keras_file or onnx",
        ),
    ],
)
def test_model_kinds_are_checked_before_any_job(model, words, tmp_path):
    config = _study(**model)
    config["prediction"]["stride"] = None
    with pytest.raises(StudyError, match="config: models") as raised:
        check_models(config, ensembles=[], base_dir=tmp_path)
    assert words in str(raised.value)


def test_a_probe_predicts_stored_tiles_only_and_regimes_have_names(tmp_path):
    config = _study(kind="probe", encoder="enc")
    config["prediction"]["stride"] = 32
    with pytest.raises(StudyError, match="set stride null"):
        check_models(config, ensembles=[], base_dir=tmp_path)
    config["prediction"]["stride"] = None
    check_models(config, ensembles=[], base_dir=tmp_path)  # fine as it is
    config["datasets"]["site_b"]["regimes"] = {"model": {"kind": "cnn", "encoder": None}}
    with pytest.raises(StudyError, match="is not a regime name"):
        check_models(config, ensembles=[], base_dir=tmp_path)


def test_the_demo_config_passes(tmp_path):
    check_models(validated_config(), ensembles=[], base_dir=ROOT)
