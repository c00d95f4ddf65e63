"""Every public estimator call computes with the model's device current (issue 10).

CuPy allocates and launches on the *current* device, whatever arrays it is given, so an
estimator with ``device=1`` must make its device current for the whole call, not only
inside the layers. No GPU is needed to check that: ``Backend.run`` (what makes the device
current) is wrapped to count how deep the calls are inside it, and every place where an
estimator touches backend arrays outside the layers (moving data to or from the backend,
the losses and output functions, the optimizer's step) records whether it was called
inside ``Backend.run``.
"""

from __future__ import annotations

import functools
import sys
import threading

import numpy as np
import pytest

import anyrnn
from anyrnn import RNNClassifier, RNNRegressor, ScratchSimpleRNNClassifier
from anyrnn.backend import Backend
from anyrnn.train import losses
from anyrnn.train.optimizers import Optimizer

RNG = np.random.default_rng(7)
X = RNG.normal(size=(24, 5, 2))
SEQS = [RNG.normal(size=(n, 2)) for n in [3, 5, 4, 2, 5, 3] * 4]  # unequal lengths
PETS = np.array(["cat", "dog"])[(X[:, :, 0].sum(axis=1) > 0).astype(int)]
THREE = np.arange(24) % 3
Y_REAL = X[:, :, 0].sum(axis=1)
Y_SEQ = [s[:, :1] * 2.0 for s in SEQS]
FAST = dict(n_nodes=4, epochs=2, batch_size=8, random_state=0)


class DeviceProbe:
    """Counts how deep the current thread is inside ``Backend.run``; the probed functions
    record their name when called outside it (``outside``) and whenever called (``hits``)."""

    def __init__(self, monkeypatch):
        self.local = threading.local()
        self.outside: list[str] = []
        self.hits: list[str] = []
        real_run = Backend.run

        def run(backend, fn, *args, **kwargs):
            self.local.depth = self.depth + 1
            try:
                return real_run(backend, fn, *args, **kwargs)
            finally:
                self.local.depth -= 1

        monkeypatch.setattr(Backend, "run", run)
        for name in ("from_host", "asarray", "scalar", "zeros"):
            monkeypatch.setattr(Backend, name, self.wrap(f"Backend.{name}", getattr(Backend, name)))
        for name in (
            "softmax_cross_entropy",
            "sigmoid_binary_cross_entropy",
            "mean_squared_error",
            "softmax",
            "sigmoid",
        ):
            monkeypatch.setattr(losses, name, self.wrap(f"losses.{name}", getattr(losses, name)))
        monkeypatch.setattr(Optimizer, "step", self.wrap("Optimizer.step", Optimizer.step))
        real_to_numpy = anyrnn.to_numpy
        probe = self.wrap("to_numpy", real_to_numpy)
        for mod in list(sys.modules.values()):  # every anyrnn module that imported it
            if getattr(mod, "__name__", "").startswith("anyrnn") and (
                getattr(mod, "to_numpy", None) is real_to_numpy
            ):
                monkeypatch.setattr(mod, "to_numpy", probe)

    @property
    def depth(self) -> int:
        return getattr(self.local, "depth", 0)

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def probed(*args, **kwargs):
            self.hits.append(name)
            if not self.depth:
                self.outside.append(name)
            return fn(*args, **kwargs)

        return probed

    def check(self, call, what):
        """Run ``call``; return what went wrong (empty when every probe ran on the device)."""
        self.outside.clear()
        self.hits.clear()
        call()
        if not self.hits:
            return [f"{what}: no probed function was called (the probe sees nothing)"]
        if self.outside:
            return [f"{what} computed outside Backend.run: {sorted(set(self.outside))}"]
        return []


def _classifier_calls(y, path):
    return {
        "fit": lambda e: e.fit(X, y),
        "fit with sample_weight and early stopping": lambda e: e.set_params(
            early_stopping=True, validation_fraction=0.25, class_weight="balanced"
        ).fit(X, y, sample_weight=np.linspace(0.5, 1.5, 24)),
        "fit on unequal lengths": lambda e: e.set_params(
            early_stopping=False, class_weight=None
        ).fit(SEQS, y),
        "warm_start fit": lambda e: e.set_params(warm_start=True).fit(SEQS, y),
        "partial_fit": lambda e: e.partial_fit(SEQS, y),
        "predict_proba": lambda e: e.predict_proba(SEQS),
        "predict": lambda e: e.predict(X),
        "score": lambda e: e.score(SEQS, y),
        "save": lambda e: e.save(path),
        "load": lambda e: anyrnn.load(path).predict_proba(X),
    }


@pytest.mark.parametrize("cls", [RNNClassifier, ScratchSimpleRNNClassifier])
@pytest.mark.parametrize("labels", ["binary", "three classes"])
def test_every_public_classifier_call_runs_under_the_models_device(
    monkeypatch, tmp_path, cls, labels
):
    y = PETS if labels == "binary" else THREE
    est = cls(**FAST)
    probe = DeviceProbe(monkeypatch)
    problems = []
    for what, call in _classifier_calls(y, tmp_path / "m.npz").items():
        problems += probe.check(functools.partial(call, est), f"{cls.__name__}.{what}")
    fresh = cls(**FAST)
    problems += probe.check(
        lambda: fresh.partial_fit(X, y, classes=np.unique(y)), "first partial_fit"
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("targets", ["one per sequence", "sequences"])
def test_every_public_regressor_call_runs_under_the_models_device(monkeypatch, tmp_path, targets):
    y = Y_REAL if targets == "one per sequence" else Y_SEQ
    Xs = SEQS if targets == "sequences" else X
    est = RNNRegressor(**FAST)
    path = tmp_path / "m.npz"
    probe = DeviceProbe(monkeypatch)
    calls = {
        "fit": lambda: est.fit(Xs, y),
        "fit with early stopping": lambda: est.set_params(
            early_stopping=True, validation_fraction=0.25
        ).fit(Xs, y, sample_weight=np.linspace(0.5, 1.5, 24)),
        "warm_start fit": lambda: est.set_params(warm_start=True).fit(Xs, y),
        "partial_fit": lambda: est.partial_fit(Xs, y),
        "predict": lambda: est.predict(Xs),
        "score": lambda: est.score(Xs, y),
        "save": lambda: est.save(path),
        "load": lambda: anyrnn.load(path).predict(Xs),
    }
    problems = [
        p for what, call in calls.items() for p in probe.check(call, f"RNNRegressor.{what}")
    ]
    assert not problems, "\n".join(problems)


def test_the_probe_sees_a_call_made_outside_the_device():
    """The probe itself can fail: a loss computed outside ``Backend.run`` is reported."""
    mp = pytest.MonkeyPatch()
    try:
        probe = DeviceProbe(mp)
        [problem] = probe.check(lambda: losses.softmax(np.ones((2, 3))), "a bare softmax")
        assert "outside Backend.run: ['losses.softmax']" in problem
        [problem] = probe.check(lambda: None, "nothing")
        assert "no probed function" in problem
        assert (
            probe.check(
                lambda: anyrnn.resolve_backend("numpy").run(losses.softmax, np.ones((2, 3))),
                "in run",
            )
            == []
        )
    finally:
        mp.undo()


@pytest.mark.parametrize(
    "params, words",
    [
        (dict(device="cuda:0"), ["cpu", "cuda:0"]),
        (dict(backend="array_api_strict", device="device9"), ["device9"]),
        (dict(backend="numpy", dtype="float16"), ["dtype", "float16"]),
    ],
)
def test_device_is_checked_at_fit_like_a_layer_checks_it_at_construction(params, words):
    """An estimator's backend, device and dtype are scikit-learn hyper-parameters, set
    without checks; ``fit`` resolves them first, raising what building a layer raises,
    and leaves the estimator as it was."""
    with pytest.raises(ValueError) as layer_error:
        anyrnn.SimpleRNN(2, 3, **params)
    est = RNNClassifier(**FAST, **params)
    before = est.get_params()
    with pytest.raises(ValueError) as fit_error:
        est.fit(X, PETS)
    assert str(fit_error.value) == str(layer_error.value)
    for w in words:
        assert w in str(fit_error.value)
    assert est.get_params() == before and not hasattr(est, "network_")
