"""Bad input to the core layer and backends: a clear error that names expected and
received values, and the layer left exactly as it was."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import anyrnn
from anyrnn.backend import _status


def _fresh():
    rnn = anyrnn.SimpleRNN(3, 4, dtype="float64", random_state=0)
    rnn.forward(np.ones((2, 5, 3)))
    rnn.backward(np.ones((2, 4)))
    return rnn


def _snapshot(rnn):
    return pickle.dumps(
        (
            {k: np.array(v) for k, v in rnn.params.items()},
            {k: np.array(v) for k, v in rnn.grads.items()},
            rnn._tape is None or np.array(rnn._tape.data["x2"]),
            rnn._out_shape,
            np.array(rnn.dh0),
        )
    )


X_OK = np.ones((2, 5, 3))
LAYER_CASES = [
    # (id, call, exception, words the message must contain)
    ("X 2-D", lambda r: r.forward(np.ones((5, 3))), ValueError, ["3-D", "(5, 3)"]),
    ("X 4-D", lambda r: r.forward(np.ones((1, 2, 5, 3))), ValueError, ["3-D", "4-D"]),
    (
        "X wrong n_features",
        lambda r: r.forward(np.ones((2, 5, 7))),
        ValueError,
        ["7 features", "built for 3"],
    ),
    ("X no time steps", lambda r: r.forward(np.ones((2, 0, 3))), ValueError, ["n_steps = 0"]),
    ("X empty batch", lambda r: r.forward(np.ones((0, 5, 3))), ValueError, ["empty batch"]),
    (
        "X complex",
        lambda r: r.forward(np.ones((2, 5, 3)) * 1j),
        TypeError,
        ["real numbers", "complex"],
    ),
    ("X strings", lambda r: r.forward(np.full((2, 5, 3), "a")), TypeError, ["real numbers"]),
    (
        "X object",
        lambda r: r.forward(np.ones((2, 5, 3), dtype=object)),
        TypeError,
        ["real numbers", "object"],
    ),
    ("X ragged", lambda r: r.forward([[[1, 2, 3]], [[1, 2]]]), ValueError, ["X could not be read"]),
    ("X None", lambda r: r.forward(None), TypeError, ["X is a"]),
    ("X scalar", lambda r: r.forward(3.0), ValueError, ["3-D", "0-D"]),
    (
        "h0 wrong batch",
        lambda r: r.forward(X_OK, np.ones((3, 4))),
        ValueError,
        ["(2, 4)", "(3, 4)"],
    ),
    (
        "h0 wrong nodes",
        lambda r: r.forward(X_OK, np.ones((2, 5))),
        ValueError,
        ["(2, 4)", "(2, 5)"],
    ),
    ("h0 1-D", lambda r: r.forward(X_OK, np.ones(4)), ValueError, ["(2, 4)", "(4,)"]),
    (
        "h0 complex",
        lambda r: r.forward(X_OK, np.ones((2, 4)) * 1j),
        TypeError,
        ["h0 must hold real"],
    ),
    (
        "d_out 3-D for last state",
        lambda r: r.backward(np.ones((2, 5, 4))),
        ValueError,
        ["(2, 4)", "(2, 5, 4)"],
    ),
    ("d_out wrong batch", lambda r: r.backward(np.ones((3, 4))), ValueError, ["(2, 4)", "(3, 4)"]),
    (
        "d_out complex",
        lambda r: r.backward(np.ones((2, 4)) * 1j),
        TypeError,
        ["d_out must hold real"],
    ),
    ("d_out strings", lambda r: r.backward([["a"] * 4] * 2), TypeError, ["d_out must hold real"]),
    (
        "W_x wrong shape",
        lambda r: setattr(r, "W_x", np.ones((4, 3))),
        ValueError,
        ["W_x", "(3, 4)", "(4, 3)"],
    ),
    (
        "W_h wrong shape",
        lambda r: setattr(r, "W_h", np.ones((4, 5))),
        ValueError,
        ["W_h", "(4, 4)", "(4, 5)"],
    ),
    ("B 2-D", lambda r: setattr(r, "B", np.ones((1, 4))), ValueError, ["B", "(4,)", "(1, 4)"]),
    ("B too short", lambda r: setattr(r, "B", [1, 2]), ValueError, ["B", "(4,)", "(2,)"]),
    (
        "W_x complex",
        lambda r: setattr(r, "W_x", np.ones((3, 4)) * 1j),
        TypeError,
        ["W_x must hold real"],
    ),
    ("W_x None", lambda r: setattr(r, "W_x", None), TypeError, ["W_x is a"]),
    (
        "set_params_from unknown",
        lambda r: r.set_params_from({"W_q": np.ones((3, 4))}),
        ValueError,
        ["W_q", "W_x"],
    ),
    (
        "set_params_from half bad",
        lambda r: r.set_params_from({"W_x": np.zeros((3, 4)), "W_h": np.ones((2, 2))}),
        ValueError,
        ["W_h", "(4, 4)", "(2, 2)"],
    ),
]


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_bad_layer_input_leaves_layer_unchanged(case):
    _, call, exc, words = case
    rnn = _fresh()
    before = _snapshot(rnn)
    with pytest.raises(exc) as info:
        call(rnn)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert _snapshot(rnn) == before


def test_backward_before_forward():
    rnn = anyrnn.SimpleRNN(3, 4)
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.backward(np.ones((2, 4)))
    assert rnn.grads == {}


def test_d_out_for_sequences_must_be_3d():
    rnn = anyrnn.SimpleRNN(3, 4, return_sequences=True)
    rnn.forward(X_OK)
    with pytest.raises(ValueError, match=r"\(2, 5, 4\).*\(2, 4\)"):
        rnn.backward(np.ones((2, 4)))


CONSTRUCTOR_CASES = [
    ("unknown backend", dict(backend="tensorflowz"), ValueError, ["tensorflowz", "numpy", "auto"]),
    ("backend not a namespace", dict(backend=42), TypeError, ["42"]),
    (
        "backend module without array API",
        dict(backend=pickle),
        TypeError,
        ["not an Array API", "asarray"],
    ),
    ("unknown dtype", dict(dtype="float16"), ValueError, ["float16", "float32", "float64"]),
    ("int dtype", dict(dtype=np.int32), ValueError, ["int32", "float32"]),
    ("unknown activation", dict(activation="sigmoid"), ValueError, ["sigmoid", "tanh", "relu"]),
    ("n_features 0", dict(n_features=0), ValueError, ["n_features", "0"]),
    ("n_nodes negative", dict(n_nodes=-1), ValueError, ["n_nodes", "-1"]),
    ("n_nodes float", dict(n_nodes=2.5), ValueError, ["n_nodes", "2.5"]),
    ("n_nodes bool", dict(n_nodes=True), ValueError, ["n_nodes", "True"]),
    ("n_features str", dict(n_features="3"), ValueError, ["n_features", "'3'"]),
    (
        "return_sequences str",
        dict(return_sequences="yes"),
        ValueError,
        ["return_sequences", "'yes'"],
    ),
    ("numpy device", dict(device="cuda:0"), ValueError, ["cpu", "cuda:0"]),
    (
        "strict device",
        dict(backend="array_api_strict", device="device9"),
        ValueError,
        ["device1", "device9"],
    ),
]


@pytest.mark.parametrize("case", CONSTRUCTOR_CASES, ids=[c[0] for c in CONSTRUCTOR_CASES])
def test_bad_constructor_arguments(case):
    _, kw, exc, words = case
    args = dict(n_features=3, n_nodes=4)
    args.update(kw)
    with pytest.raises(exc) as info:
        anyrnn.SimpleRNN(args.pop("n_features"), args.pop("n_nodes"), **args)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_array_of_another_library_names_both():
    torch = pytest.importorskip("torch", reason="torch not installed")
    rnn = _fresh()
    before = _snapshot(rnn)
    with pytest.raises(TypeError) as info:
        rnn.forward(torch.ones((2, 5, 3)))
    msg = str(info.value)
    assert "torch" in msg and "numpy" in msg and "anyrnn.to_backend" in msg
    assert _snapshot(rnn) == before


def test_numpy_array_into_strict_layer_is_moved_but_strict_into_numpy_is_refused():
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    rnn_strict = anyrnn.SimpleRNN(3, 4, backend="array_api_strict")
    assert type(rnn_strict.forward(X_OK)).__module__.startswith("array_api_strict")
    with pytest.raises(TypeError, match="array_api_strict array.*numpy backend"):
        _fresh().forward(strict.ones((2, 5, 3)))


def test_h0_of_another_library_is_refused():
    strict = pytest.importorskip("array_api_strict", reason="array-api-strict not installed")
    rnn = _fresh()
    before = _snapshot(rnn)
    with pytest.raises(TypeError, match="h0 is a array_api_strict array"):
        rnn.forward(X_OK, strict.ones((2, 4), dtype=strict.float64))
    assert _snapshot(rnn) == before


def test_jax_float64_without_x64_is_refused_not_truncated():
    jax = pytest.importorskip("jax", reason="jax not installed")
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            anyrnn.SimpleRNN(3, 4, backend="jax", dtype="float64")
        rnn = anyrnn.SimpleRNN(3, 4, backend="jax", dtype="float32")  # float32 is fine
        assert rnn.forward(X_OK).dtype == jax.numpy.float32
    finally:
        jax.config.update("jax_enable_x64", True)


@pytest.mark.skipif(_status("cupy")[0], reason="a GPU is usable here, so cupy is not refused")
def test_unusable_cupy_says_why_and_how():
    with pytest.raises(anyrnn.BackendUnavailableError) as info:
        anyrnn.SimpleRNN(3, 4, backend="cupy")
    msg = str(info.value)
    assert "'cupy'" in msg and "anyrnn[cuda12]" in msg and "numpy" in msg
    assert "cupy" not in anyrnn.available_backends()
