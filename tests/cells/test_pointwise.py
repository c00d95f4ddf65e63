"""The step functions' arithmetic where it is easy to get wrong: extreme values."""

from __future__ import annotations

import numpy as np
import pytest

import anyrnn
from anyrnn.cells import pointwise
from anyrnn.train import losses


@pytest.mark.parametrize("fast_path", ["auto", False])
def test_relu_keeps_the_largest_float32_and_nan(fast_path):
    """max(s, 0) as a select: 2e38 stays 2e38 (``(s + |s|)/2`` overflows to inf), NaN stays NaN."""
    rnn = anyrnn.SimpleRNN(1, 1, activation="relu", fast_path=fast_path)
    rnn.W_x, rnn.W_h, rnn.B = [[1.0]], [[0.0]], [0.0]
    X = np.array([[[2e38]], [[-3.0]], [[np.nan]]], dtype=np.float32)
    out = rnn.infer(X)
    assert out[0, 0] == np.float32(2e38)
    assert out[1, 0] == 0.0
    assert np.isnan(out[2, 0])


def test_sigmoid_from_tanh_is_the_sigmoid_without_overflow():
    """Right to a rounding of 1 (absolute), with no overflow or warning at any size."""
    z = np.array([-1e4, -710.0, -88.0, -1.0, 0.0, 1.0, 88.0, 710.0, 1e4])
    with np.errstate(all="raise"):
        got = pointwise.sigmoid_from_tanh(np.tanh(z / 2), 0.5)
    np.testing.assert_allclose(got, losses.sigmoid(z), rtol=0, atol=np.finfo(float).eps)
