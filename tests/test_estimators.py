"""The scikit-learn estimators: protocol, training behaviour, backends and errors."""

from __future__ import annotations

import pickle
import re

import joblib
import numpy as np
import pytest
from conftest import rel_err
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from anyrnn import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier


def _sequence_task(n=120, seed=0, n_classes=2):
    """Label = sign of the sum of feature 0 over the sequence (needs memory of all steps)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6, 3))
    s = X[:, :, 0].sum(axis=1)
    if n_classes == 2:
        y = (s > 0).astype(int)
    else:
        y = np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


FAST = dict(n_nodes=8, epochs=15, lr=0.02, batch_size=16, random_state=0)


def test_classifier_learns_and_probabilities_sum_to_one():
    X, y = _sequence_task(200)
    clf = RNNClassifier(**FAST).fit(X[:150], y[:150])
    assert clf.score(X[150:], y[150:]) > 0.85
    proba = clf.predict_proba(X[150:])
    assert proba.shape == (50, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X[150:]), clf.classes_[np.argmax(proba, axis=1)])
    assert clf.n_features_in_ == 3 and clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


@pytest.mark.parametrize("labels", ["int", "str", "onehot"])
def test_multiclass_with_any_label_type(labels):
    X, y = _sequence_task(150, n_classes=3)
    names = np.array(["low", "mid", "high"])
    target = {"int": y + 10, "str": names[y], "onehot": np.eye(3)[y]}[labels]
    clf = RNNClassifier(**FAST).fit(X, target)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    pred = clf.predict(X)
    expected_classes = {"int": [10, 11, 12], "str": sorted(names), "onehot": [0, 1, 2]}[labels]
    assert list(clf.classes_) == list(expected_classes)
    assert set(pred) <= set(clf.classes_)
    assert clf.score(X, target) > 0.6


def test_same_random_state_gives_bit_identical_fit():
    X, y = _sequence_task()
    a = RNNClassifier(**FAST).fit(X, y)
    b = RNNClassifier(**FAST).fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    for layer_a, layer_b in zip(a.network_.layers, b.network_.layers):
        for k in layer_a.params:
            np.testing.assert_array_equal(layer_a.params[k], layer_b.params[k])
    c = RNNClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert c.loss_curve_ != a.loss_curve_


def test_predict_does_not_change_the_estimator():
    X, y = _sequence_task()
    clf = RNNClassifier(**FAST).fit(X, y)
    before = joblib.hash(clf)
    clf.predict(X)
    clf.predict_proba(X[:7])
    clf.score(X, y)
    assert joblib.hash(clf) == before


def test_sklearn_protocol_clone_pipeline_grid_search_cross_val():
    X, y = _sequence_task(90)
    clf = RNNClassifier(**{**FAST, "epochs": 3})
    assert clone(clf).get_params() == clf.get_params()
    clf.set_params(n_nodes=5)
    assert clf.n_nodes == 5
    pipe = Pipeline([("scale", FunctionTransformer(lambda a: a / 2)), ("rnn", clf)])
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (90,)
    grid = GridSearchCV(clf, {"n_nodes": [4, 6]}, cv=2).fit(X, y)
    assert grid.best_params_["n_nodes"] in (4, 6)
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))


def test_pickle_round_trip_keeps_predictions():
    X, y = _sequence_task()
    clf = RNNClassifier(**FAST).fit(X, y)
    clone_ = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone_.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("cls", [RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier])
def test_pickles_from_the_single_module_still_load(cls):
    """Before ``anyrnn.estimators`` became a package, pickles named its classes
    ``anyrnn.estimators.RNNClassifier``, ``anyrnn.estimators.Network``: those names stay."""
    X, y = _sequence_task(40)
    est = cls(**{**FAST, "epochs": 1}).fit(X, y)
    raw = pickle.dumps(est, protocol=3)  # classes as GLOBAL opcodes: "c<module>\n<name>\n"
    old = re.sub(rb"canyrnn\.estimators\.\w+\n", b"canyrnn.estimators\n", raw)
    assert f"canyrnn.estimators.{cls.__module__.rsplit('.')[-1]}\n{cls.__name__}\n".encode() in raw
    assert b"canyrnn.estimators.network\nNetwork" in raw
    assert b"canyrnn.estimators\nNetwork" in old and b"canyrnn.estimators." not in old
    loaded = pickle.loads(old)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_regressor_many_to_one_and_sequences():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5, 2))
    y1 = X[:, :, 0].mean(axis=1)
    reg = RNNRegressor(**{**FAST, "epochs": 40}).fit(X, y1)
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y1) > 0.8
    y2 = np.stack([y1, X[:, -1, 1]], axis=1)
    assert RNNRegressor(**FAST).fit(X, y2).predict(X).shape == (200, 2)


def test_regressor_next_step_prediction_like_seed_003():
    """Sequence targets: predict x_{t+1} from x_1..x_t for noisy sine waves."""
    rng = np.random.default_rng(2)
    phase = rng.uniform(0, 2 * np.pi, size=(150, 1))
    t = np.arange(21)[None, :] * 0.4
    series = np.sin(t + phase)[:, :, None]
    X, Y = series[:, :-1, :], series[:, 1:, :]
    reg = RNNRegressor(n_nodes=16, epochs=40, lr=0.01, batch_size=16, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (150, 20, 1)
    assert reg.score(X, Y) > 0.9


def test_early_stopping_keeps_best_and_records_scores():
    X, y = _sequence_task(200)
    clf = RNNClassifier(**{**FAST, "epochs": 200}, early_stopping=True, n_iter_no_change=3).fit(
        X, y
    )
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_verbose_shows_progress_bar_with_loss(capsys):
    X, y = _sequence_task(40)
    RNNClassifier(**{**FAST, "epochs": 2}, verbose=True).fit(X, y)
    err = capsys.readouterr().err
    assert "RNNClassifier" in err and "loss=" in err and "2/2" in err


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_divergence_stops_with_advice_and_keeps_finite_weights():
    # the run is made to overflow on purpose: NumPy's overflow warnings are expected
    X, y = _sequence_task()
    reg = RNNRegressor(
        n_nodes=8, epochs=20, optimizer="sgd", lr=1e3, activation="relu", random_state=0
    )
    with pytest.raises(FloatingPointError, match=r"smaller lr.*clip_norm") as info:
        reg.fit(X * 100, y * 1e6)
    assert not hasattr(reg, "network_")  # a fit that raises changes nothing (issue 11, item 1)
    last = info.value.estimator  # the model at its last finite epoch
    assert last.get_params() == reg.get_params()
    for layer in last.network_.layers:
        for v in layer.params.values():
            assert np.all(np.isfinite(v))
    assert np.all(np.isfinite(last.predict(X)))
    # clipping the gradients lets the same run finish
    RNNRegressor(n_nodes=8, epochs=3, optimizer="sgd", lr=1e-3, clip_norm=1.0, random_state=0).fit(
        X, y
    )


def test_scratch_classifier_accepts_the_seeds_names():
    X, y = _sequence_task()
    clf = ScratchSimpleRNNClassifier(
        n_nodes=8,
        n_features=3,
        n_output=1,
        activation="relu",
        optimizer="sgd",
        lr=0.05,
        batch_size=16,
        epochs=5,
        verbose=False,
        random_state=0,
    ).fit(X, y)
    assert clf.predict(X).shape == (120,)
    with pytest.raises(ValueError, match="X has 3 features.*n_features=4"):
        ScratchSimpleRNNClassifier(n_nodes=8, n_features=4, epochs=1).fit(X, y)


def test_fit_on_every_backend_matches_numpy(backend):
    X, y = _sequence_task(60)
    kw = dict(FAST, epochs=3, dtype="float64")
    ref = RNNClassifier(**kw).fit(X, y)
    clf = RNNClassifier(**kw, backend=backend.name, device=backend.device).fit(X, y)
    np.testing.assert_allclose(clf.loss_curve_, ref.loss_curve_, rtol=1e-10)
    proba = clf.predict_proba(X)
    assert clf.network_.recurrent._backend.owns(proba)
    assert rel_err(proba, ref.predict_proba(X)) < 1e-9
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))
    reg = RNNRegressor(**kw, backend=backend.name, device=backend.device).fit(X, X[:, :, :1])
    ref_reg = RNNRegressor(**kw).fit(X, X[:, :, :1])
    assert rel_err(reg.predict(X), ref_reg.predict(X)) < 1e-9


# ----------------------------------------------------------------------------- errors


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        RNNClassifier().predict(np.ones((2, 3, 4)))
    with pytest.raises(NotFittedError):
        RNNRegressor().predict(np.ones((2, 3, 4)))


@pytest.mark.parametrize(
    "make, X, y, words",
    [
        (RNNClassifier, np.full((4, 3, 2), np.nan), [0, 1, 0, 1], ["NaN"]),
        (RNNClassifier, np.full((4, 3, 2), np.inf), [0, 1, 0, 1], ["infinity"]),
        (RNNRegressor, np.ones((4, 3, 2)), [0, np.nan, 0, 1], ["y contains NaN"]),
        (RNNRegressor, np.ones((4, 3, 2)), [0, np.inf, 0, 1], ["y contains NaN or infinity"]),
        (RNNClassifier, np.ones((4, 3, 2, 1)), [0, 1, 0, 1], ["3-D", "(4, 3, 2, 1)"]),
        (RNNClassifier, np.ones(4), [0, 1, 0, 1], ["2D", "1D"]),
        (RNNClassifier, np.ones((4, 3, 2)), [0, 1, 0], ["4", "3", "different numbers of samples"]),
        (RNNClassifier, np.ones((4, 3, 2)), [1, 1, 1, 1], ["at least 2 classes"]),
        (RNNClassifier, np.ones((4, 3, 2)), np.full((4, 2), 0.5), ["one-hot"]),
        (RNNRegressor, np.ones((4, 3, 2)), np.ones((4, 5, 1)), ["3 steps", "(4, 5, 1)"]),
        (RNNRegressor, np.ones((4, 3, 2)), ["a", "b", "c", "d"], ["real numbers"]),
        (RNNClassifier, np.ones((4, 0, 2)), [0, 1, 0, 1], ["at least one", "(4, 0, 2)"]),
    ],
)
def test_bad_training_data(make, X, y, words):
    with pytest.raises(ValueError) as info:
        make(epochs=1).fit(X, y)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_wrong_feature_count_at_predict():
    X, y = _sequence_task(40)
    clf = RNNClassifier(**{**FAST, "epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but RNNClassifier is expecting 3"):
        clf.predict(np.ones((2, 6, 5)))
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full((2, 6, 3), np.nan))


@pytest.mark.parametrize(
    "param, value, words",
    [
        ("optimizer", "adamw", ["adamw", "adagrad", "rmsprop", "sgd"]),
        ("activation", "sigmoid", ["sigmoid", "tanh", "relu"]),
        ("cell", "transformer", ["transformer", "simple"]),
        ("n_nodes", 0, ["n_nodes", "0"]),
        ("lr", -1.0, ["lr", "-1.0"]),
        ("lr", float("inf"), ["lr", "inf"]),
        ("batch_size", 2.5, ["batch_size", "2.5"]),
        ("epochs", 0, ["epochs", "0"]),
        ("validation_fraction", 1.0, ["validation_fraction", "1.0"]),
        ("clip_norm", 0, ["clip_norm", "0"]),
        ("dtype", "float16", ["float16", "float32"]),
        ("backend", "mxnet", ["mxnet", "numpy"]),
    ],
)
def test_bad_hyperparameters(param, value, words):
    X, y = _sequence_task(20)
    with pytest.raises(ValueError) as info:
        RNNClassifier(**{"epochs": 1, param: value}).fit(X, y)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_fit_warnings_point_at_the_callers_line():
    """The warnings ``fit`` gives name the line that called it, not a line inside anyrnn
    (however many frames the call passes through: device context, fit loop, reading)."""
    X, y = _sequence_task(40)
    calls = [
        lambda: RNNClassifier(**{**FAST, "epochs": 1, "dropout": 0.2}).fit(X, y),
        lambda: RNNClassifier(**{**FAST, "epochs": 1}).fit(X, y[:, None]),
        lambda: RNNClassifier(**{**FAST, "epochs": 1}).fit(X.transpose(0, 2, 1)[:, :2], y),
    ]
    for call in calls:
        with pytest.warns(Warning) as record:
            call()
        assert [w.filename for w in record] == [__file__], [str(w.message) for w in record]
