"""``set_params`` after ``fit``, then ``save`` (issue 11, item 3).

The rule: a hyper-parameter that shapes the fitted network (``cell``, ``n_nodes``,
``num_layers``, ``bidirectional``, the simple cell's ``activation``; for the seeds'
classifier also ``n_features`` and ``n_output`` when given) must still describe it when the
estimator is saved. Otherwise ``save`` refuses, naming the parameter, its fitted value and its
value now, and writes nothing: an existing file stays byte for byte, and the estimator is
unchanged. (``activation`` was the case that slipped through: its weights have the same shapes
under tanh and relu, so the file loaded silently as another model.) Every other
hyper-parameter may change: the loaded model then predicts exactly what the saved one does.
"""

from __future__ import annotations

import numpy as np
import pytest
from _state import fingerprint
from sklearn.base import clone

import anyrnn
from anyrnn import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier

RNG = np.random.default_rng(5)
X = RNG.normal(size=(24, 5, 2))
PETS = np.array(["cat", "dog"])[(X[:, :, 0].sum(axis=1) > 0).astype(int)]
THREE = np.arange(24) % 3
Y_REAL = X[:, :, 0].sum(axis=1)
FAST = dict(n_nodes=3, epochs=1, batch_size=8, random_state=0)

# (estimator, y, the change, the fitted value the message must name)
STRUCTURAL = {
    "activation tanh -> relu": (RNNClassifier(**FAST), PETS, {"activation": "relu"}, "'tanh'"),
    "activation relu -> tanh (regressor)": (
        RNNRegressor(**FAST, activation="relu"),
        Y_REAL,
        {"activation": "tanh"},
        "'relu'",
    ),
    "n_nodes": (RNNClassifier(**FAST), PETS, {"n_nodes": 4}, "3"),
    "cell simple -> lstm": (RNNClassifier(**FAST), THREE, {"cell": "LSTM"}, "'simple'"),
    "cell lstm -> gru": (RNNRegressor(**FAST, cell="lstm"), Y_REAL, {"cell": "gru"}, "'lstm'"),
    "num_layers 1 -> 2": (RNNClassifier(**FAST), PETS, {"num_layers": 2}, "1"),
    "num_layers 2 -> 1": (RNNRegressor(**FAST, num_layers=2), Y_REAL, {"num_layers": 1}, "2"),
    "bidirectional": (RNNClassifier(**FAST), PETS, {"bidirectional": True}, "False"),
    "bidirectional off": (
        RNNClassifier(**FAST, cell="gru", num_layers=2, bidirectional=True),
        THREE,
        {"bidirectional": False},
        "True",
    ),
    "seeds' n_features": (ScratchSimpleRNNClassifier(**FAST), PETS, {"n_features": 5}, "2"),
    "seeds' n_output": (
        ScratchSimpleRNNClassifier(**FAST, n_output=3),
        THREE,
        {"n_output": 2},
        "3",
    ),
}


@pytest.mark.parametrize("save", ["method", "anyrnn.save"])
@pytest.mark.parametrize("case", STRUCTURAL, ids=list(STRUCTURAL))
def test_save_refuses_a_structural_change_after_fit(tmp_path, case, save):
    est, y, change, fitted = STRUCTURAL[case]
    est = clone(est).fit(X, y).set_params(**change)
    [(name, now)] = change.items()
    now = now.lower() if isinstance(now, str) else now  # as the estimator reads it
    path = tmp_path / "model.npz"
    anyrnn.Dense(2, 2, random_state=0).save(path)  # a good file already there
    good = path.read_bytes()
    before = fingerprint(est)
    with pytest.raises(ValueError) as info:
        est.save(path) if save == "method" else anyrnn.save(est, path)
    message = str(info.value)
    for words in (
        "cannot be saved",
        "set_params()",
        f"{name}: {fitted} when fitted, {now!r} now",
        f"set_params({name}={fitted})",
        "Fit again",
        "Nothing was written",
    ):
        assert words in message, (words, message)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temp file left
    assert fingerprint(est) == before
    with pytest.raises(ValueError, match="Nothing was written"):  # and no new file either
        est.save(tmp_path / "new.npz")
    assert not (tmp_path / "new.npz").exists()


@pytest.mark.parametrize("case", STRUCTURAL, ids=list(STRUCTURAL))
def test_set_back_the_estimator_saves_and_loads_as_itself(tmp_path, case):
    est, y, change, _ = STRUCTURAL[case]
    est = clone(est).fit(X, y)
    old = {k: v for k, v in est.get_params().items() if k in change}
    est.set_params(**change).set_params(**old)
    est.save(tmp_path / "m.npz")
    loaded = anyrnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


# Hyper-parameters that do not shape the network: the file keeps the new value, and the
# loaded model predicts what the saved one predicts.
FREE = {
    "dropout": {"dropout": 0.5},
    "optimizer and lr": {"optimizer": "sgd", "lr": 0.5},
    "epochs and batch_size": {"epochs": 9, "batch_size": 3},
    "early stopping": {"early_stopping": "loss", "validation_fraction": 0.3, "tol": 0.1},
    "clip_norm": {"clip_norm": 1.0},
    "warm_start and verbose": {"warm_start": True, "verbose": True},
    "random_state": {"random_state": 9},
    "class_weight": {"class_weight": {"cat": 2.0}},
    "dtype": {"dtype": "float64"},
    "backend": {"backend": "array_api_strict"},
    "layout": {"layout": "nct"},
    "cell name in capitals": {"cell": "SIMPLE"},
    "activation of an LSTM": {"activation": "relu"},
}


@pytest.mark.parametrize("case", FREE, ids=list(FREE))
def test_other_changes_save_and_load_a_model_that_predicts_the_same(tmp_path, case):
    cell = "lstm" if case == "activation of an LSTM" else "simple"
    est = RNNClassifier(**FAST, cell=cell).fit(X, PETS).set_params(**FREE[case])
    X_now = X.transpose(0, 2, 1) if case == "layout" else X  # what the new layout reads
    est.save(tmp_path / "m.npz")
    loaded = anyrnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(
        anyrnn.to_numpy(loaded.predict_proba(X_now)), anyrnn.to_numpy(est.predict_proba(X_now))
    )
    np.testing.assert_array_equal(loaded.predict(X_now), est.predict(X_now))


def test_warm_start_names_the_change_the_same_way():
    """One rule for continuing and for saving: the same check, the same words."""
    est = RNNClassifier(**FAST).fit(X, PETS).set_params(warm_start=True, activation="relu")
    with pytest.raises(ValueError, match="activation: 'tanh' when fitted, 'relu' now"):
        est.fit(X, PETS)
    with pytest.raises(ValueError, match="activation: 'tanh' when fitted, 'relu' now"):
        est.partial_fit(X, PETS)
