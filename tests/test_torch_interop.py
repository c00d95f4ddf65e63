"""from_torch / to_torch against PyTorch itself: every cell x {1 layer, 2 layers,
bidirectional}, outputs and dX to 1e-9 in float64."""

from __future__ import annotations

import numpy as np
import pytest

import anyrnn

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'anyrnn[torch]')"
)

MODULES = {
    "rnn-tanh": lambda **kw: torch.nn.RNN(**kw),
    "rnn-relu": lambda **kw: torch.nn.RNN(nonlinearity="relu", **kw),
    "lstm": lambda **kw: torch.nn.LSTM(**kw),
    "gru": lambda **kw: torch.nn.GRU(**kw),
}
SHAPES = {
    "1 layer": dict(num_layers=1),
    "2 layers": dict(num_layers=2),
    "bidirectional": dict(bidirectional=True),
    "2 bidirectional layers, no bias": dict(num_layers=2, bidirectional=True, bias=False),
}


def _torch_reference(module, X, d_out):
    Xt = torch.tensor(X, requires_grad=True)
    out = module(Xt)[0]
    out.backward(torch.tensor(d_out))
    return out.detach().numpy(), Xt.grad.numpy()


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", list(MODULES))
@pytest.mark.parametrize("batch_first", [True, False])
def test_from_torch_matches_torch(kind, shape, batch_first):
    torch.manual_seed(0)
    module = MODULES[kind](
        input_size=3, hidden_size=4, batch_first=True, dtype=torch.float64, **SHAPES[shape]
    )
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 6, 3))
    n_out = 4 * (2 if module.bidirectional else 1)
    d_out = rng.normal(size=(2, 6, n_out))
    out_t, dX_t = _torch_reference(module, X, d_out)
    module.batch_first = batch_first  # anyrnn always takes batch-first X
    obj = anyrnn.from_torch(module)
    out = obj.forward(X)
    assert out.dtype == np.float64 and out.shape == out_t.shape
    np.testing.assert_allclose(out, out_t, rtol=0, atol=1e-9)
    np.testing.assert_allclose(obj.backward(d_out), dX_t, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", list(MODULES))
def test_parameter_gradients_match_torch(kind):
    torch.manual_seed(1)
    module = MODULES[kind](input_size=3, hidden_size=4, batch_first=True, dtype=torch.float64)
    rng = np.random.default_rng(1)
    X, d_out = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    _torch_reference(module, X, d_out)
    layer = anyrnn.from_torch(module)
    layer.forward(X)
    layer.backward(d_out)
    np.testing.assert_allclose(layer.dW_x, module.weight_ih_l0.grad.numpy().T, atol=1e-9)
    np.testing.assert_allclose(layer.dW_h, module.weight_hh_l0.grad.numpy().T, atol=1e-9)
    np.testing.assert_allclose(layer.dB, module.bias_ih_l0.grad.numpy(), atol=1e-9)
    if kind == "gru":
        np.testing.assert_allclose(layer.dB_h, module.bias_hh_l0.grad.numpy(), atol=1e-9)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", list(MODULES))
def test_to_torch_round_trip(kind, shape):
    torch.manual_seed(2)
    module = MODULES[kind](
        input_size=3, hidden_size=4, batch_first=True, dtype=torch.float64, **SHAPES[shape]
    )
    obj = anyrnn.from_torch(module)
    back = anyrnn.to_torch(obj)
    assert type(back) is type(module) and back.batch_first
    assert back.num_layers == module.num_layers and back.bidirectional == module.bidirectional
    X = np.random.default_rng(2).normal(size=(2, 5, 3))
    with torch.no_grad():
        np.testing.assert_allclose(
            back(torch.tensor(X))[0].numpy(), module(torch.tensor(X))[0].numpy(), atol=1e-12
        )
    np.testing.assert_allclose(
        obj.forward(X), back(torch.tensor(X))[0].detach().numpy(), atol=1e-12
    )


def test_from_torch_on_another_backend_and_dtype():
    module = torch.nn.LSTM(3, 4, batch_first=True)  # float32 module
    obj = anyrnn.from_torch(module, backend="array_api_strict")
    assert obj.backend == "array_api_strict" and obj._backend.dtype_name == "float32"
    X = np.random.default_rng(3).normal(size=(2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        ref = module(torch.tensor(X))[0].numpy()
    np.testing.assert_allclose(anyrnn.to_numpy(obj.forward(X)), ref, atol=1e-5)
    assert anyrnn.from_torch(module, dtype="float64").dtype == np.float64


def test_unsupported_modules_and_layers():
    with pytest.raises(ValueError, match=r"proj_size > 0.*proj_size=2"):
        anyrnn.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(
        TypeError, match=r"torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU; got .*Linear"
    ):
        anyrnn.from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(ValueError, match="reset_after=True"):
        anyrnn.to_torch(anyrnn.GRU(3, 4, reset_after=False))
    with pytest.raises(ValueError, match="concatenate"):
        anyrnn.to_torch(anyrnn.Bidirectional(anyrnn.LSTM(3, 4), "sum"))
    with pytest.raises(ValueError, match="same cell"):
        anyrnn.to_torch(
            anyrnn.Stacked([anyrnn.LSTM(3, 4, return_sequences=True), anyrnn.GRU(4, 4)])
        )
    with pytest.raises(TypeError, match="Dense"):
        anyrnn.to_torch(anyrnn.Dense(3, 4))
