"""from_torch / to_torch (issue 11, item 12): ``bias=False`` modules round-trip with
``bias=False`` (strict ``load_state_dict``), and with dropout > 0 ``infer`` is what matches
the module (in eval mode), while ``forward`` applies dropout."""

from __future__ import annotations

import numpy as np
import pytest
from _state import fingerprint

import anyrnn

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

KINDS = {
    "rnn": lambda **kw: torch.nn.RNN(**kw),
    "lstm": lambda **kw: torch.nn.LSTM(**kw),
    "gru": lambda **kw: torch.nn.GRU(**kw),
}
SHAPES = {
    "1 layer": {},
    "2 layers": dict(num_layers=2),
    "2 bidirectional layers": dict(num_layers=2, bidirectional=True),
}
X = np.random.default_rng(0).normal(size=(2, 5, 3))


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", list(KINDS))
def test_bias_free_modules_round_trip_strictly(kind, shape):
    torch.manual_seed(0)
    module = KINDS[kind](
        input_size=3,
        hidden_size=4,
        bias=False,
        batch_first=True,
        dtype=torch.float64,
        **SHAPES[shape],
    )
    obj = anyrnn.from_torch(module)
    back = anyrnn.to_torch(obj)
    assert back.bias is False
    assert set(back.state_dict()) == set(module.state_dict())
    back.load_state_dict(module.state_dict(), strict=True)
    module.load_state_dict(back.state_dict(), strict=True)
    with torch.no_grad():
        ref = module(torch.tensor(X))[0].numpy()
        np.testing.assert_allclose(back(torch.tensor(X))[0].numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(obj.forward(X), ref, atol=1e-9)


def test_bias_true_is_the_default_and_can_be_forced():
    module = torch.nn.GRU(3, 4, bias=False, batch_first=True, dtype=torch.float64)
    obj = anyrnn.from_torch(module)
    assert anyrnn.to_torch(obj, bias=True).bias is True  # explicit: zero biases kept
    fresh = anyrnn.SimpleRNN(3, 4, dtype="float64")
    assert anyrnn.to_torch(fresh).bias is True  # anyrnn's own layers have biases
    assert anyrnn.to_torch(fresh, bias=np.False_).bias is False  # its biases are zero


def test_biases_are_never_dropped_silently():
    module = torch.nn.LSTM(3, 4, bias=False, batch_first=True, dtype=torch.float64)
    obj = anyrnn.from_torch(module)
    obj.forward(X)
    obj.backward(np.ones((2, 5, 4)))
    obj.update(0.1)  # training has made B non-zero
    before = fingerprint(obj)
    with pytest.raises(ValueError, match="bias=True") as info:
        anyrnn.to_torch(obj)
    assert "non-zero B" in str(info.value)
    assert fingerprint(obj) == before
    assert anyrnn.to_torch(obj, bias=True).bias is True
    lstm = anyrnn.LSTM(3, 4)  # forget-gate bias 1 from the start
    with pytest.raises(ValueError, match="non-zero B"):
        anyrnn.to_torch(lstm, bias=False)
    with pytest.raises(ValueError, match="bias must be True or False"):
        anyrnn.to_torch(lstm, bias="no")


@pytest.mark.parametrize("kind", list(KINDS))
def test_dropout_infer_matches_eval_mode_forward_applies_dropout(kind):
    torch.manual_seed(1)
    module = KINDS[kind](
        input_size=3,
        hidden_size=4,
        num_layers=2,
        dropout=0.5,
        batch_first=True,
        dtype=torch.float64,
    )
    obj = anyrnn.from_torch(module)
    assert obj.dropout == 0.5
    module.eval()
    with torch.no_grad():
        ref = module(torch.tensor(X))[0].numpy()
    np.testing.assert_allclose(obj.infer(X), ref, atol=1e-9)
    assert not np.allclose(obj.forward(X), ref)  # forward drops units, as training mode does
