"""Aliasing (issue 11, item 10): what is a copy, and inputs NumPy allows but libraries refuse.

* ``to_numpy`` always returns a new, writable NumPy array sharing no memory with its
  argument, on every backend.
* Assigning a parameter copies: writing into the caller's array later never changes
  the layer.
* NumPy arrays with negative strides or non-native byte order work on every backend
  (torch refuses both in ``asarray``): as X, h0, d_out, parameters and masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import rel_err

import anyrnn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5, 2))


def _layer(backend, **kw):
    return anyrnn.SimpleRNN(
        2,
        4,
        return_sequences=True,
        backend=backend.name,
        device=backend.device,
        dtype="float64",
        random_state=0,
        **kw,
    )


def test_to_numpy_is_a_private_writable_copy(backend):
    layer = _layer(backend)
    w = layer.W_x
    host = anyrnn.to_numpy(w)
    assert type(host) is np.ndarray and host.flags.writeable
    host[...] = 7.0
    assert not np.any(anyrnn.to_numpy(layer.W_x) == 7.0)
    again = anyrnn.to_numpy(w)
    assert not np.shares_memory(again, host)


class _Sub(np.ndarray):
    pass


def test_to_numpy_of_numpy_arrays_views_and_subclasses():
    a = np.arange(6.0).reshape(2, 3)
    b = anyrnn.to_numpy(a)
    assert b is not a and not np.shares_memory(a, b)
    view = a[:, ::-1]
    np.testing.assert_array_equal(anyrnn.to_numpy(view), view)
    sub = anyrnn.to_numpy(a.view(_Sub))
    assert type(sub) is np.ndarray and not np.shares_memory(sub, a)


def test_assigning_a_parameter_copies_it(backend):
    layer = _layer(backend)
    for name, shape in layer.param_shapes().items():
        value = np.full(shape, 0.5)
        setattr(layer, name, value)
        value[...] = 99.0  # the caller reuses their buffer
        assert np.all(anyrnn.to_numpy(getattr(layer, name)) == 0.5), name
    values = {n: np.full(s, 0.25) for n, s in layer.param_shapes().items()}
    layer.set_params_from(values)
    for v in values.values():
        v[...] = -1.0
    assert all(np.all(anyrnn.to_numpy(p) == 0.25) for p in layer.params.values())


def test_assigning_an_array_of_the_layers_own_library_copies_it(backend):
    layer = _layer(backend)
    other = _layer(backend)
    layer.W_h = other.W_h  # the other layer's own array
    assert layer.W_h is not other.W_h
    if backend.name in ("numpy", "torch"):  # libraries with in-place writes
        own = other.W_h
        own[0, 0] = 5.0
        assert float(anyrnn.to_numpy(layer.W_h)[0, 0]) != 5.0


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[:, ::-1, :],  # negative stride on the time axis
        lambda a: a[::-1, :, ::-1],
        lambda a: a.astype(">f8"),  # big-endian
        lambda a: a.astype(">f4"),
        lambda a: np.asfortranarray(a).astype(">f8")[:, ::-2, :],
    ],
    ids=["reversed steps", "reversed batch and features", ">f8", ">f4", "fortran >f8 strided"],
)
def test_unusual_numpy_layouts_work_on_every_backend(backend, make):
    layer = _layer(backend)
    ref = _layer(type(backend)("numpy"))
    Xu = make(X)
    Xn = np.ascontiguousarray(Xu, dtype=np.float64)
    h0 = make(RNG.normal(size=(3, 8, 1)))[:, :4, 0]  # 2-D, same oddity
    h0n = np.ascontiguousarray(h0, dtype=np.float64)
    out = layer.forward(Xu, h0)
    assert rel_err(out, ref.forward(Xn, h0n)) < 1e-6  # >f4 rounds X to float32
    b, t, n = out.shape
    d_out = make(RNG.normal(size=(b, 2 * t, n)))[:, :t, :]
    dX = layer.backward(d_out)
    assert rel_err(dX, ref.backward(np.ascontiguousarray(d_out, dtype=np.float64))) < 1e-6
    w = np.asarray(RNG.normal(size=(4, 4)))[::-1].astype(">f8")
    layer.W_h = w
    np.testing.assert_array_equal(anyrnn.to_numpy(layer.W_h), w.astype(np.float64))
    mask = (np.arange(Xu.shape[1]) < np.array([[Xu.shape[1]], [2], [1]]))[:, ::-1]
    masked = layer.infer(Xu, mask=mask)
    ref.W_h = w
    assert rel_err(masked, ref.infer(Xn, mask=np.ascontiguousarray(mask))) < 1e-6


def test_to_backend_with_unusual_layouts(backend):
    for a in (X[:, ::-1, :], X.astype(">f8"), X.astype(">f4")[::-1]):
        moved = anyrnn.to_backend(a, backend.name, backend.device)
        np.testing.assert_array_equal(anyrnn.to_numpy(moved), a)
