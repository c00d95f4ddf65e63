"""Fused elementwise steps for the in-place path: Numba on NumPy, ElementwiseKernel on CuPy.

NumPy runs one operation at a time: an LSTM step's gate arithmetic is about twenty passes
over memory, each a Python call. These kernels do the arithmetic between the matmuls and
the ``tanh`` calls in one pass each (``pip install "anyrnn[fast]"``). ``tanh`` stays with
NumPy, whose SIMD ``tanh`` is many times faster than a scalar libm call in a loop, so a
step is: matmul (BLAS) -> add and ``tanh`` (NumPy) -> one fused kernel.

Every expression keeps the operand order of the generic cells (:mod:`anyrnn.cells`), in
the arrays' own dtype: the constants arrive as scalars of that dtype (``half``, ``one``),
so float32 stays float32, and Numba does not contract ``a*b + c`` into an FMA without
``fastmath``. Layouts are the in-place path's (:mod:`anyrnn._inplace`): LSTM gates
``i, f, o, g``, GRU ``r, z, n``, a row per batch entry, sigmoid gates holding
``tanh(z/2)`` before the kernel turns them into ``σ(z) = 0.5·tanh(z/2) + 0.5``.

Without Numba, :func:`load` returns None and the in-place path does the same arithmetic
with NumPy ``out=`` calls; the tests run both and compare them with the generic path.
:func:`load_cupy` gives the same functions as CuPy kernels (see its docstring).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

__all__ = ["KERNELS", "load", "load_cupy"]

#: The fused steps :func:`load` and :func:`load_cupy` provide, with the same signatures.
KERNELS = (
    "lstm_forward",
    "lstm_backward",
    "gru_forward_u",
    "gru_forward_gates",
    "gru_forward_h",
    "gru_backward",
    "simple_backward",
)


@functools.cache
def load() -> SimpleNamespace | None:
    """The compiled kernels, or None when Numba is not installed."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(cache=True, nogil=True)

    # Each loop runs over one row's contiguous 1-D slices: with those LLVM vectorises
    # the arithmetic (indexing the 2-D arrays directly was three times slower).

    @jit
    def lstm_forward(z, c_prev, c, half):  # pragma: no cover - compiled
        # z: (B, 4n) holding tanh(z/2) for i, f, o and tanh(z) for g; c: (B, n) out
        B, n = c.shape
        for b in range(B):
            zi, zf, zo, zg = z[b, :n], z[b, n : 2 * n], z[b, 2 * n : 3 * n], z[b, 3 * n :]
            cp, cb = c_prev[b], c[b]
            for j in range(n):
                i = half * zi[j] + half
                f = half * zf[j] + half
                zi[j] = i
                zf[j] = f
                zo[j] = half * zo[j] + half
                cb[j] = f * cp[j] + i * zg[j]  # c = f ⊙ c_prev + i ⊙ g

    @jit
    def lstm_backward(z, c_prev, tc, dh, dc, dz, one):  # pragma: no cover - compiled
        # dh: (B, n) in; dc: (B, n) in/out (becomes dc_{t-1}); dz: (B, 4n) out
        B, n = dh.shape
        for b in range(B):
            zi, zf, zo, zg = z[b, :n], z[b, n : 2 * n], z[b, 2 * n : 3 * n], z[b, 3 * n :]
            di, df, do, dg = dz[b, :n], dz[b, n : 2 * n], dz[b, 2 * n : 3 * n], dz[b, 3 * n :]
            cp, tcb, dhb, dcb = c_prev[b], tc[b], dh[b], dc[b]
            for j in range(n):
                i, f, o, g, t, d_h = zi[j], zf[j], zo[j], zg[j], tcb[j], dhb[j]
                d_c = dcb[j] + d_h * o * (one - t * t)  # through h = o ⊙ tanh(c)
                di[j] = d_c * g * (i - i * i)
                df[j] = d_c * cp[j] * (f - f * f)
                do[j] = d_h * t * (o - o * o)
                dg[j] = d_c * i * (one - g * g)
                dcb[j] = d_c * f

    @jit
    def gru_forward_u(z, u, b_h, u_n):  # pragma: no cover - compiled
        # z: (B, 3n) holding a_t; u: (B, 3n) = h_{t-1}·W_h; u_n: (B, n) out
        B, n = u_n.shape
        bh_rz, bh_n = b_h[: 2 * n], b_h[2 * n :]
        for b in range(B):
            zrz, urz, un_in, unb = z[b, : 2 * n], u[b, : 2 * n], u[b, 2 * n :], u_n[b]
            for j in range(2 * n):
                zrz[j] = zrz[j] + (urz[j] + bh_rz[j])  # a[rz] + u[rz]
            for j in range(n):
                unb[j] = un_in[j] + bh_n[j]

    @jit
    def gru_forward_gates(z, u_n, half):  # pragma: no cover - compiled
        # z[:, :2n] holds tanh(·/2) of r, z: make them σ, then the candidate's argument
        B, n = u_n.shape
        for b in range(B):
            zr, zz, zn, unb = z[b, :n], z[b, n : 2 * n], z[b, 2 * n :], u_n[b]
            for j in range(n):
                r = half * zr[j] + half
                zr[j] = r
                zz[j] = half * zz[j] + half
                zn[j] = zn[j] + r * unb[j]

    @jit
    def gru_forward_h(z, h_prev, h):  # pragma: no cover - compiled
        B, n = h.shape
        for b in range(B):
            zz, zn, hp, hb = z[b, n : 2 * n], z[b, 2 * n :], h_prev[b], h[b]
            for j in range(n):
                cand = zn[j]
                hb[j] = cand + zz[j] * (hp[j] - cand)  # n + z ⊙ (h_prev - n)

    @jit
    def gru_backward(z, u_n, h_prev, dh, dzx, dzh, one):  # pragma: no cover - compiled
        # dh: (B, n) in, becomes dh ⊙ z (the direct term of dh_{t-1}); dzx, dzh: (B, 3n)
        B, n = dh.shape
        for b in range(B):
            zr, zz, zn = z[b, :n], z[b, n : 2 * n], z[b, 2 * n :]
            xr, xz, xn = dzx[b, :n], dzx[b, n : 2 * n], dzx[b, 2 * n :]
            ur, uz, un = dzh[b, :n], dzh[b, n : 2 * n], dzh[b, 2 * n :]
            unb, hp, dhb = u_n[b], h_prev[b], dh[b]
            for j in range(n):
                r, zg, cand, d_h = zr[j], zz[j], zn[j], dhb[j]
                d_n = d_h * (one - zg) * (one - cand * cand)
                d_z = d_h * (hp[j] - cand) * zg * (one - zg)
                d_r = d_n * unb[j] * r * (one - r)
                xr[j] = d_r
                xz[j] = d_z
                xn[j] = d_n
                ur[j] = d_r
                uz[j] = d_z
                un[j] = d_n * r
                dhb[j] = d_h * zg

    @jit
    def simple_backward(h, dh, dz, one, tanh):  # pragma: no cover - compiled
        B, n = h.shape
        zero = one - one
        for b in range(B):
            hb, dhb, dzb = h[b], dh[b], dz[b]
            if tanh:
                for j in range(n):
                    dzb[j] = dhb[j] * (one - hb[j] * hb[j])
            else:
                for j in range(n):
                    dzb[j] = dhb[j] * (one if hb[j] > 0 else zero)

    defined = locals()
    return SimpleNamespace(**{name: defined[name] for name in KERNELS})


_CUPY_KERNELS = {  # name: (in_params, out_params, body); raw arrays arrive flattened
    "lstm_forward": (
        "T c_prev, int64 nh",
        "raw T z, T c",
        """
        const ptrdiff_t r = (i / nh) * 4 * nh + i % nh;
        const T ig = (T)0.5 * z[r] + (T)0.5;
        const T fg = (T)0.5 * z[r + nh] + (T)0.5;
        z[r] = ig;
        z[r + nh] = fg;
        z[r + 2 * nh] = (T)0.5 * z[r + 2 * nh] + (T)0.5;
        c = fg * c_prev + ig * z[r + 3 * nh];
        """,
    ),
    "lstm_backward": (
        "raw T z, T c_prev, T tc, T dh, int64 nh",
        "T dc, raw T dz",
        """
        const ptrdiff_t r = (i / nh) * 4 * nh + i % nh;
        const T ig = z[r], fg = z[r + nh], og = z[r + 2 * nh], gg = z[r + 3 * nh];
        const T d_c = dc + dh * og * ((T)1 - tc * tc);
        dz[r] = d_c * gg * (ig - ig * ig);
        dz[r + nh] = d_c * c_prev * (fg - fg * fg);
        dz[r + 2 * nh] = dh * tc * (og - og * og);
        dz[r + 3 * nh] = d_c * ig * ((T)1 - gg * gg);
        dc = d_c * fg;
        """,
    ),
    "gru_forward_u": (
        "raw T u, raw T b_h, int64 nh",
        "raw T z, T u_n",
        """
        const ptrdiff_t j = i % nh, r = (i / nh) * 3 * nh + j;
        z[r] = z[r] + (u[r] + b_h[j]);
        z[r + nh] = z[r + nh] + (u[r + nh] + b_h[nh + j]);
        u_n = u[r + 2 * nh] + b_h[2 * nh + j];
        """,
    ),
    "gru_forward_gates": (
        "T u_n, int64 nh",
        "raw T z",
        """
        const ptrdiff_t r = (i / nh) * 3 * nh + i % nh;
        const T rg = (T)0.5 * z[r] + (T)0.5;
        z[r] = rg;
        z[r + nh] = (T)0.5 * z[r + nh] + (T)0.5;
        z[r + 2 * nh] = z[r + 2 * nh] + rg * u_n;
        """,
    ),
    "gru_forward_h": (
        "raw T z, T h_prev, int64 nh",
        "T h",
        """
        const ptrdiff_t r = (i / nh) * 3 * nh + i % nh;
        const T cand = z[r + 2 * nh];
        h = cand + z[r + nh] * (h_prev - cand);
        """,
    ),
    "gru_backward": (
        "raw T z, T u_n, T h_prev, int64 nh",
        "T dh, raw T dzx, raw T dzh",
        """
        const ptrdiff_t r = (i / nh) * 3 * nh + i % nh;
        const T rg = z[r], zg = z[r + nh], cand = z[r + 2 * nh], d_h = dh;
        const T d_n = d_h * ((T)1 - zg) * ((T)1 - cand * cand);
        const T d_z = d_h * (h_prev - cand) * zg * ((T)1 - zg);
        const T d_r = d_n * u_n * rg * ((T)1 - rg);
        dzx[r] = d_r;
        dzx[r + nh] = d_z;
        dzx[r + 2 * nh] = d_n;
        dzh[r] = d_r;
        dzh[r + nh] = d_z;
        dzh[r + 2 * nh] = d_n * rg;
        dh = d_h * zg;
        """,
    ),
    "simple_backward_tanh": ("T h, T dh", "T dz", "dz = dh * ((T)1 - h * h);"),
    "simple_backward_relu": ("T h, T dh", "T dz", "dz = dh * (h > (T)0 ? (T)1 : (T)0);"),
}


@functools.cache
def load_cupy() -> SimpleNamespace:
    """The same kernels as CuPy ``ElementwiseKernel`` objects, one thread per (row, unit).

    Compiled by CuPy on first use (``--fmad=false``: no contraction into FMA, as in the
    generic path's separate operations). Every array they index by hand is contiguous
    in the in-place path, and arrives flattened. Written without a GPU to run them on:
    the tests run them where a GPU does.
    """
    import cupy

    k = {
        name: cupy.ElementwiseKernel(
            inp, out, body, name=f"anyrnn_{name}", no_return=True, options=("--fmad=false",)
        )
        for name, (inp, out, body) in _CUPY_KERNELS.items()
    }
    return _elementwise_api(k)


def _elementwise_api(k: dict) -> SimpleNamespace:
    """The fused-kernel functions over elementwise kernels ``k`` called as CuPy calls
    them (in_params, then out_params). The tests pass C++ builds of the same bodies."""

    def flat(a):
        return a.reshape(-1)

    def lstm_forward(z, c_prev, c, half):
        k["lstm_forward"](c_prev, c.shape[1], flat(z), c)

    def lstm_backward(z, c_prev, tc, dh, dc, dz, one):
        k["lstm_backward"](flat(z), c_prev, tc, dh, dh.shape[1], dc, flat(dz))

    def gru_forward_u(z, u, b_h, u_n):
        k["gru_forward_u"](flat(u), b_h, u_n.shape[1], flat(z), u_n)

    def gru_forward_gates(z, u_n, half):
        k["gru_forward_gates"](u_n, u_n.shape[1], flat(z))

    def gru_forward_h(z, h_prev, h):
        k["gru_forward_h"](flat(z), h_prev, h.shape[1], h)

    def gru_backward(z, u_n, h_prev, dh, dzx, dzh, one):
        k["gru_backward"](flat(z), u_n, h_prev, dh.shape[1], dh, flat(dzx), flat(dzh))

    def simple_backward(h, dh, dz, one, tanh):
        k["simple_backward_tanh" if tanh else "simple_backward_relu"](h, dh, dz)

    defined = locals()
    return SimpleNamespace(**{name: defined[name] for name in KERNELS})
