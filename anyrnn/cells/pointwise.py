"""Every cell's elementwise step arithmetic, written once: the only copy there is.

Each ``*_forward``/``*_backward`` function is one time step of a cell *after its
matmuls*: the matmuls, the slicing into gate blocks and the gate layout live in the
cell classes (:mod:`anyrnn.cells`) and the engines. Every engine runs these same
functions:

* the generic engine calls them on Array API arrays, with ``m`` the array namespace;
* the NumPy in-place engine runs Numba kernels *generated* from their source
  (:mod:`anyrnn.engine.codegen`), with NumPy's vectorised ``tanh`` between them;
* the CuPy in-place engine runs one ``ElementwiseKernel`` per step, generated from the
  same source (FMA contraction off, so it rounds as the CPU does).

``python -m anyrnn kernels --show`` prints the generated source.

The language is a small subset of Python, so that it translates:

* the first parameter is ``m``, which provides ``m.tanh(x)`` and ``m.where(cond, a, b)``
  (``cond`` a comparison); every other parameter is an array or a scalar of the
  model's dtype, numbers included (``half``, ``one``, ``zero``): a literal like ``0.5``
  would change the dtype of float32 arithmetic on some backends, so none is allowed;
* the body is single-name assignments ``x = <expr>`` and one final ``return`` of
  names; expressions use ``+ - *``, unary ``-``, comparisons (inside ``where`` only),
  ``m.tanh`` and ``m.where``, and calls of the one-line helpers of this module, which
  are inlined; ``tanh`` takes a name and is assigned on its own line (the CPU engine
  runs NumPy's SIMD ``tanh`` over whole blocks between the generated loops);
* no branches and no loops; every expression is evaluated left to right as written,
  so all engines round alike.

Conventions for the in-place engines (see :class:`anyrnn.cells.base.Cell`): forward
parameters ``a_<gate>`` are the input side ``x_t·W_x + B`` of a gate, ``w_<gate>`` the
recurrent product ``h_{t-1}·W_h``, ``b_<gate>`` a recurrent bias, ``<state>_prev`` the
previous state; the sigmoid gates' pre-activations arrive *halved* (their weight
columns are scaled by 0.5 once per pass, which is exact), so one ``tanh`` serves every
gate: ``σ(z) = ½·tanh(z/2) + ½``. Backward parameters named after a gate, state or
stored value are the forward's values at step t (``<state>`` the state after it,
``<state>_prev`` the one before); ``dh_mm`` is the gradient reaching ``h_t`` through
``W_h`` from step t+1 and ``dy`` the one from the step's output.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FUNCTIONS",
    "sigmoid_from_tanh",
    "interpolate",
    "simple_tanh_forward",
    "simple_tanh_backward",
    "simple_relu_forward",
    "simple_relu_backward",
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "gru_gates_reset_before",
    "gru_state_reset_before",
    "gru_backward_state_reset_before",
    "gru_backward_gates_reset_before",
    "add",
]


# ----------------------------------------------------------------------------- helpers
# One-line helpers: inlined wherever they are called.


def sigmoid_from_tanh(t: Any, half: Any) -> Any:
    """σ(z) = ½·tanh(z/2) + ½ from ``t = tanh(z/2)``: one tanh, no overflow, and an error
    of a rounding of 1 (absolute: ample for a gate; the losses use a log-domain form that
    is accurate far into the tails)."""
    return half * t + half


def interpolate(n: Any, z: Any, h_prev: Any) -> Any:
    """GRU's state update ``(1 - z) ⊙ n + z ⊙ h_prev``, as ``n + z ⊙ (h_prev - n)``."""
    return n + z * (h_prev - n)


def add(m: Any, a: Any, b: Any) -> Any:
    """``a + b``: gradients that meet at a state (e.g. GRU's dh_0)."""
    s = a + b
    return s


# ----------------------------------------------------------------------------- SimpleRNN
# a_t = x_t·W_x + B,  w_t = h_{t-1}·W_h,  h_t = f(a_t + w_t)


def simple_tanh_forward(m: Any, a: Any, w: Any) -> Any:
    s = a + w
    h = m.tanh(s)
    return h


def simple_tanh_backward(m: Any, h: Any, dh_mm: Any, dy: Any, one: Any) -> Any:
    d_h = dh_mm + dy  # h_t feeds step t+1 and the output
    da = d_h * (one - h * h)  # tanh' = 1 - tanh²
    return da


def simple_relu_forward(m: Any, a: Any, w: Any, zero: Any) -> Any:
    s = a + w
    h = m.where(s < zero, zero, s)  # max(s, 0); NaN stays NaN, 2e38 stays 2e38
    return h


def simple_relu_backward(m: Any, h: Any, dh_mm: Any, dy: Any, zero: Any) -> Any:
    d_h = dh_mm + dy
    da = m.where(h > zero, d_h, zero)  # relu' = [s > 0] = [h > 0]
    return da


# ----------------------------------------------------------------------------- LSTM
# gates i, f, g, o;  z = a + w  (i, f, o halved)


def lstm_forward(
    m: Any,
    a_i: Any,
    a_f: Any,
    a_g: Any,
    a_o: Any,
    w_i: Any,
    w_f: Any,
    w_g: Any,
    w_o: Any,
    c_prev: Any,
    half: Any,
) -> Any:
    z_i = a_i + w_i
    z_f = a_f + w_f
    z_g = a_g + w_g
    z_o = a_o + w_o
    t_i = m.tanh(z_i)
    t_f = m.tanh(z_f)
    g = m.tanh(z_g)
    t_o = m.tanh(z_o)
    i = sigmoid_from_tanh(t_i, half)
    f = sigmoid_from_tanh(t_f, half)
    o = sigmoid_from_tanh(t_o, half)
    c = f * c_prev + i * g  # c_t = f ⊙ c_{t-1} + i ⊙ g
    tc = m.tanh(c)
    h = o * tc  # h_t = o ⊙ tanh(c_t)
    return i, f, g, o, c, h


def lstm_backward(
    m: Any,
    i: Any,
    f: Any,
    g: Any,
    o: Any,
    c_prev: Any,
    c: Any,
    dh_mm: Any,
    dy: Any,
    dc: Any,
    one: Any,
) -> Any:
    tc = m.tanh(c)  # recomputed rather than stored
    d_h = dh_mm + dy
    d_c = dc + d_h * o * (one - tc * tc)  # h = o ⊙ tanh(c)
    da_i = d_c * g * (i - i * i)  # c = f ⊙ c_prev + i ⊙ g, σ' = σ(1 - σ)
    da_f = d_c * c_prev * (f - f * f)
    da_g = d_c * i * (one - g * g)  # g = tanh(z_g)
    da_o = d_h * tc * (o - o * o)
    dc_prev = d_c * f
    return da_i, da_f, da_g, da_o, dc_prev


# ----------------------------------------------------------------------------- GRU
# gates r, z, n;  reset_after (cuDNN/PyTorch): n = tanh(a_n + r ⊙ (w_n + b_n)),
# with the recurrent bias b = B_h; r and z halved.


def gru_forward(
    m: Any,
    a_r: Any,
    a_z: Any,
    a_n: Any,
    w_r: Any,
    w_z: Any,
    w_n: Any,
    b_r: Any,
    b_z: Any,
    b_n: Any,
    h_prev: Any,
    half: Any,
) -> Any:
    z_r = a_r + (w_r + b_r)  # a + u, u = h_{t-1}·W_h + B_h
    z_z = a_z + (w_z + b_z)
    u_n = w_n + b_n
    t_r = m.tanh(z_r)
    t_z = m.tanh(z_z)
    r = sigmoid_from_tanh(t_r, half)
    z = sigmoid_from_tanh(t_z, half)
    z_n = a_n + r * u_n
    n = m.tanh(z_n)  # n_t = tanh(a[n] + r ⊙ u[n])
    h = interpolate(n, z, h_prev)
    return r, z, n, u_n, h


def gru_backward(
    m: Any,
    r: Any,
    z: Any,
    n: Any,
    u_n: Any,
    h_prev: Any,
    dh_direct: Any,
    dh_mm: Any,
    dy: Any,
    one: Any,
) -> Any:
    d_h = dh_direct + dh_mm + dy  # h_t = ... + z ⊙ h_{t-1} reaches h_t directly too
    da_n = d_h * (one - z) * (one - n * n)  # h = n + z ⊙ (h_prev - n), n = tanh(·)
    da_z = d_h * (h_prev - n) * z * (one - z)
    da_r = da_n * u_n * r * (one - r)  # n = tanh(a[n] + r ⊙ u[n])
    du_r = da_r  # u = h_{t-1}·W_h + B_h enters r and z as a does ...
    du_z = da_z
    du_n = da_n * r  # ... and n through r ⊙ u[n]
    dh_direct_prev = d_h * z
    return da_r, da_z, da_n, du_r, du_z, du_n, dh_direct_prev


# reset_before (the original paper): n = tanh(a_n + (r ⊙ h_{t-1})·W_h[n]): a matmul sits
# between the gates and the candidate, so the step is two functions each way (generic
# engine only).


def gru_gates_reset_before(
    m: Any, a_r: Any, a_z: Any, w_r: Any, w_z: Any, h_prev: Any, half: Any
) -> Any:
    z_r = a_r + w_r
    z_z = a_z + w_z
    t_r = m.tanh(z_r)
    t_z = m.tanh(z_z)
    r = sigmoid_from_tanh(t_r, half)
    z = sigmoid_from_tanh(t_z, half)
    rh = r * h_prev
    return r, z, rh


def gru_state_reset_before(m: Any, a_n: Any, w_n: Any, z: Any, h_prev: Any) -> Any:
    z_n = a_n + w_n  # w_n = (r ⊙ h_{t-1})·W_h[n]
    n = m.tanh(z_n)
    h = interpolate(n, z, h_prev)
    return n, h


def gru_backward_state_reset_before(
    m: Any, z: Any, n: Any, h_prev: Any, dh_mm: Any, dy: Any, one: Any
) -> Any:
    d_h = dh_mm + dy
    da_n = d_h * (one - z) * (one - n * n)
    da_z = d_h * (h_prev - n) * z * (one - z)
    dh_direct = d_h * z
    return da_n, da_z, dh_direct


def gru_backward_gates_reset_before(
    m: Any, r: Any, h_prev: Any, d_rh: Any, dh_direct: Any, one: Any
) -> Any:
    da_r = d_rh * h_prev * r * (one - r)  # rh = r ⊙ h_prev, r = σ(·)
    dh_part = dh_direct + d_rh * r
    return da_r, dh_part


#: the step functions (not the helpers), for the code generators and the tests
FUNCTIONS = {
    f.__name__: f
    for f in (
        simple_tanh_forward,
        simple_tanh_backward,
        simple_relu_forward,
        simple_relu_backward,
        lstm_forward,
        lstm_backward,
        gru_forward,
        gru_backward,
        gru_gates_reset_before,
        gru_state_reset_before,
        gru_backward_state_reset_before,
        gru_backward_gates_reset_before,
        add,
    )
}
