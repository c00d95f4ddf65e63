"""Every public estimator call that raises leaves the estimator exactly as it was (issue 11,
item 1), and values a float32 model cannot hold are reported as such (item 9).

The fingerprint hashes everything a pickle holds: hyper-parameters, fitted attributes,
weights, gradients, the optimizer's state and the random generator.
"""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from scipy.sparse import csr_matrix

import anyrnn
from anyrnn import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier

RNG = np.random.default_rng(3)
X = RNG.normal(size=(24, 5, 2))
PETS = np.array(["cat", "dog"])[(X[:, :, 0].sum(axis=1) > 0).astype(int)]
Y_REAL = X[:, :, 0].sum(axis=1)
FAST = dict(n_nodes=4, epochs=2, batch_size=8, random_state=0)


def fingerprint(est) -> str:
    """A hash of the estimator's whole state (what pickle keeps)."""
    return joblib.hash(est)


def fitted_classifier(**kw):
    return RNNClassifier(**{**FAST, **kw}).fit(X, PETS)


def fitted_regressor(**kw):
    return RNNRegressor(**{**FAST, **kw}).fit(X, Y_REAL)


def assert_unchanged(est, call, error=ValueError, match=None):
    outputs = est.predict(X) if hasattr(est, "network_") else None
    params = {}
    if isinstance(call, tuple):  # (hyper-parameters to set first, then the failing call)
        params, call = call
        old = {k: v for k, v in est.get_params().items() if k in params}
        est.set_params(**params)
    before = fingerprint(est)
    with pytest.raises(error, match=match):
        call(est)
    assert fingerprint(est) == before
    if outputs is not None:
        if params:
            est.set_params(**old)
        np.testing.assert_array_equal(est.predict(X), outputs)


def _set(**params):
    """Hyper-parameters set (allowed: they are not fitted state), then a fit that fails."""
    return params, lambda est: est.fit(X, PETS if hasattr(est, "class_weight") else Y_REAL)


CLASSIFIER_CASES = {
    "continuous labels": (lambda e: e.fit(X, RNG.normal(size=24)), "Unknown label type"),
    "one class": (lambda e: e.fit(X, np.full(24, "cat")), "1 class"),
    "labels of mixed types": (
        lambda e: e.fit(X, np.array(["a", 1] * 12, dtype=object)),
        "Unknown label type|mix",
    ),
    "y too short": (lambda e: e.fit(X, PETS[:-1]), "different numbers of samples"),
    "y is None": (lambda e: e.fit(X, None), "requires y"),
    "NaN inside a sequence": (
        lambda e: e.fit(np.where(np.arange(5)[None, :, None] == 1, np.nan, X), PETS),
        "NaN inside",
    ),
    "X overflows float32": (lambda e: e.fit(X * 1e39, PETS), "overflow.*float64"),
    "4-D X": (lambda e: e.fit(X[..., None], PETS), "got 4-D"),
    "sparse X": (
        lambda e: e.fit(csr_matrix(X[:, :, 0]), PETS),
        "dense data is required",
        TypeError,
    ),
    "complex X": (lambda e: e.fit(X + 1j, PETS), "Complex"),
    "unequal features in a list": (
        lambda e: e.fit([X[0], X[1, :, :1]] + list(X[2:]), PETS),
        "different numbers of features",
    ),
    "sample_weight shape": (
        lambda e: e.fit(X, PETS, sample_weight=np.ones(3)),
        r"sample_weight.shape",
    ),
    "negative sample_weight": (
        lambda e: e.fit(X, PETS, sample_weight=-np.ones(24)),
        "Negative",
    ),
    "zero sample_weight": (lambda e: e.fit(X, PETS, sample_weight=np.zeros(24)), "zero"),
    "class_weight label unknown": (_set(class_weight={"cow": 2.0}), "cow"),
    "class_weight string": (_set(class_weight="heavy"), "class_weight"),
    "lr rejected": (_set(lr=-1.0), "lr"),
    "optimizer rejected": (_set(optimizer="adamw"), "optimizer"),
    "cell rejected": (_set(cell="transformer"), "cell"),
    "layout rejected": (_set(layout="tnf"), "layout"),
    "early_stopping rejected": (_set(early_stopping="yes"), "early_stopping"),
    "dropout rejected": (_set(dropout=1.0), "dropout"),
    "num_layers rejected": (_set(num_layers=0), "num_layers"),
    "validation part too small for the classes": (
        _set(early_stopping=True, validation_fraction=0.01),
        "validation_fraction",
    ),
    "warm start with other classes": (
        ({"warm_start": True}, lambda e: e.fit(X, np.where(PETS == "cat", "cow", PETS))),
        "same classes",
    ),
    "warm start with another architecture": (
        ({"warm_start": True, "n_nodes": 6}, lambda e: e.fit(X, PETS)),
        "architecture",
    ),
    "partial_fit with new labels": (
        lambda e: e.partial_fit(X, np.where(PETS == "cat", "cow", PETS)),
        "not among the classes",
    ),
    "partial_fit changes classes": (
        lambda e: e.partial_fit(X, PETS, classes=["cat", "cow", "dog"]),
        "not the same",
    ),
    "partial_fit with balanced weights": (
        ({"class_weight": "balanced"}, lambda e: e.partial_fit(X, PETS)),
        "partial_fit",
    ),
    "partial_fit with other features": (
        lambda e: e.partial_fit(X[:, :, :1], PETS),
        "1 features, but RNNClassifier is expecting 2",
    ),
    "predict with other features": (lambda e: e.predict(X[:, :, :1]), "expecting 2"),
    "predict_proba with NaN inside": (
        lambda e: e.predict_proba(np.where(np.arange(5)[None, :, None] == 0, np.nan, X)),
        "NaN inside",
    ),
    "score with bad X": (lambda e: e.score(X[:, :, :1], PETS), "expecting 2"),
}


@pytest.mark.parametrize("case", CLASSIFIER_CASES, ids=list(CLASSIFIER_CASES))
def test_a_failing_call_leaves_a_fitted_classifier_unchanged(case):
    call, match, *error = CLASSIFIER_CASES[case]
    assert_unchanged(fitted_classifier(), call, *error, match=match)


def test_a_failing_first_partial_fit_leaves_nothing():
    clf = RNNClassifier(**FAST)
    assert_unchanged(clf, lambda e: e.partial_fit(X, PETS), match="classes must be passed")
    assert not hasattr(clf, "classes_")


REGRESSOR_CASES = {
    "y overflows float32": (lambda e: e.fit(X, Y_REAL * 1e39), "overflow.*float64"),
    "y's squared errors overflow float32": (
        lambda e: e.fit(X, Y_REAL * 1e30),
        "squared errors overflow.*Scale y",
    ),
    "strings as targets": (lambda e: e.fit(X, PETS), "real numbers"),
    "NaN targets": (lambda e: e.fit(X, np.where(np.arange(24) == 3, np.nan, Y_REAL)), "NaN"),
    "validation part too small to score": (
        ({"early_stopping": True, "validation_fraction": 0.02}, lambda e: e.fit(X, Y_REAL)),
        r"validation_fraction.*R² needs at least 2",
    ),
    "validation part takes everything": (
        (
            {"early_stopping": "loss", "validation_fraction": 0.99},
            lambda e: e.fit(X[:2], Y_REAL[:2]),
        ),
        "no sample to train on",
    ),
    "sequence targets of other lengths": (
        lambda e: e.fit(X, np.ones((24, 4, 1))),
        "5 steps",
    ),
    "continued fit with other target shape": (
        lambda e: e.partial_fit(X, np.stack([Y_REAL, Y_REAL], axis=1)),
        "same shape",
    ),
}


@pytest.mark.parametrize("case", REGRESSOR_CASES, ids=list(REGRESSOR_CASES))
def test_a_failing_call_leaves_a_fitted_regressor_unchanged(case):
    call, match = REGRESSOR_CASES[case]
    assert_unchanged(fitted_regressor(), call, match=match)


@pytest.mark.filterwarnings("error")  # R² of one sample is NaN, without scikit-learn's warning
def test_early_stopping_on_loss_needs_only_one_validation_sample():
    reg = RNNRegressor(**FAST, early_stopping="loss", validation_fraction=0.02).fit(X, Y_REAL)
    assert len(reg.validation_loss_curve_) == reg.n_iter_
    assert np.isnan(reg.validation_scores_).all()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_divergence_leaves_a_fitted_estimator_unchanged():
    reg = fitted_regressor()
    reg.set_params(optimizer="sgd", lr=1e3, activation="relu", epochs=20)
    before = fingerprint(reg)
    with pytest.raises(FloatingPointError, match="This estimator is unchanged") as info:
        reg.fit(X * 100, Y_REAL * 1e6)
    assert fingerprint(reg) == before
    assert info.value.estimator.n_iter_ >= 0 and info.value.estimator is not reg


def test_an_error_in_the_middle_of_training_leaves_the_estimator_unchanged(monkeypatch):
    """Also an exception nobody planned for (here from the optimizer, at its second step)."""
    from anyrnn.train import optimizers

    clf = fitted_classifier(epochs=3)
    before = fingerprint(clf)
    calls = {"n": 0}
    real_step = optimizers.Optimizer.step

    def flaky(self, layers):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("device lost")
        return real_step(self, layers)

    monkeypatch.setattr(optimizers.Optimizer, "step", flaky)
    for call in (lambda e: e.fit(X, PETS), lambda e: e.partial_fit(X, PETS)):
        calls["n"] = 0
        with pytest.raises(RuntimeError, match="device lost"):
            call(clf)
        assert fingerprint(clf) == before


def test_scratch_n_output_is_checked_before_training():
    clf = ScratchSimpleRNNClassifier(n_nodes=3, n_output=3, epochs=10**9).fit  # would never end
    with pytest.raises(ValueError, match="n_output=3 does not fit y, which has 2 classes"):
        clf(X, PETS)
    fitted = ScratchSimpleRNNClassifier(n_nodes=3, epochs=1, random_state=0).fit(X, PETS)
    fit = lambda e: e.fit(X, PETS)  # noqa: E731
    assert_unchanged(fitted, ({"n_output": 5, "epochs": 10**9}, fit), match="n_output=5")
    assert_unchanged(fitted, ({"n_output": None, "n_features": 7}, fit), match="n_features=7")


def test_a_failing_fit_keeps_the_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X[:, :, 0], columns=[f"t{i}" for i in range(5)])
    clf = RNNClassifier(**FAST).fit(frame, PETS)
    assert list(clf.feature_names_in_) == list(frame.columns)
    before, pred = fingerprint(clf), clf.predict(frame)
    with pytest.raises(ValueError, match="class"):
        clf.fit(frame, np.full(24, "cat"))
    assert fingerprint(clf) == before and list(clf.feature_names_in_) == list(frame.columns)
    np.testing.assert_array_equal(clf.predict(frame), pred)
    assert RNNClassifier(**FAST).fit(X, PETS).__dict__.get("feature_names_in_") is None


def test_unfitted_calls_raise_not_fitted_and_change_nothing():
    from sklearn.exceptions import NotFittedError

    for est in (RNNClassifier(), RNNRegressor(), ScratchSimpleRNNClassifier()):
        for call in (lambda e: e.predict(X), lambda e: e.score(X, Y_REAL), lambda e: e.save("x")):
            assert_unchanged(est, call, error=NotFittedError)


def test_save_after_fit_stays_loadable(tmp_path):
    clf = fitted_classifier(cell="gru", num_layers=2, bidirectional=True)
    clf.save(tmp_path / "m.npz")
    again = anyrnn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, PETS)  # a loaded model can go on learning (with a new optimizer)
