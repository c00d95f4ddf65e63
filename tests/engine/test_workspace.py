"""Scratch buffers are per thread: read-only calls give exact results from many threads."""

from __future__ import annotations

import pickle
import threading
import tracemalloc

import numpy as np
import pytest

import anyrnn
from anyrnn.layers.recurrent import CELLS


@pytest.mark.parametrize("cls", list(CELLS.values()))
def test_concurrent_infer_gives_each_thread_its_own_exact_result(cls):
    layer = cls(6, 16, return_sequences=True, random_state=0)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(8, 30, 6)).astype(np.float32) for _ in range(4)]
    expected = [layer.infer(X) for X in inputs]
    errors: list = []
    start = threading.Barrier(len(inputs))

    def work(k: int) -> None:
        start.wait()
        for _ in range(20):
            got = layer.infer(inputs[k])
            if not np.array_equal(got, expected[k]):
                errors.append(k)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"threads {errors} got another thread's numbers"


def test_concurrent_predict_proba_is_exact():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 12, 3))
    y = (X[:, :, 0].sum(axis=1) > 0).astype(int)
    clf = anyrnn.RNNClassifier(n_nodes=16, cell="gru", epochs=2, random_state=0).fit(X, y)
    parts = [X[k::4] for k in range(4)]
    expected = [clf.predict_proba(p) for p in parts]
    errors: list = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        start.wait()
        for _ in range(20):
            if not np.array_equal(clf.predict_proba(parts[k]), expected[k]):
                errors.append(k)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("cls", list(CELLS.values()))
def test_backward_does_not_copy_the_output_gradient(cls):
    """A time-major copy of d_out would add a quarter to a half of what BPTT must keep."""
    import tracemalloc

    layer = cls(2, 16, return_sequences=True, dtype="float64", random_state=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 400, 2))
    d_out = rng.normal(size=(4, 400, 16))
    layer.forward(X)
    layer.backward(d_out)  # scratch buffers made, kernels compiled
    layer.forward(X)
    tracemalloc.start()
    try:
        layer.backward(d_out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < d_out.nbytes / 2  # dX, the gradients and the carries are smaller


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickled_layer_infers_after_loading_with_every_protocol(protocol):
    layer = anyrnn.LSTM(3, 4, dtype="float64", random_state=0)
    X = np.random.default_rng(0).normal(size=(2, 5, 3))
    expected = layer.infer(X)  # the scratch buffers exist, and are not pickled
    clone = pickle.loads(pickle.dumps(layer, protocol=protocol))
    np.testing.assert_array_equal(clone.infer(X), expected)


@pytest.mark.parametrize("cls", [anyrnn.SimpleRNN, anyrnn.LSTM, anyrnn.GRU])
def test_the_tape_keeps_no_copy_of_the_weights(cls):
    # backward reads the prepared weights' transposes (views) and constants from the tape;
    # the gated cells' scaled weight copies must not stay alive with it
    layer = cls(256, 256, return_sequences=True, dtype="float64")
    X = np.ones((2, 3, 256))
    layer.backward(np.ones(layer.forward(X).shape))  # scratch buffers and kernels made
    tracemalloc.start()
    try:
        layer.forward(X)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    weights = sum(p.nbytes for p in layer.params.values())
    assert held < weights / 8, f"the tape holds {held} bytes; the weights are {weights}"
