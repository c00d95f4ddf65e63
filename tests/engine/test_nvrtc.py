"""Every CUDA kernel anyrnn generates compiles with NVRTC, without a GPU.

CuPy assembles an ``ElementwiseKernel``'s full CUDA source from the kinds of its
arguments; this test builds the same argument descriptions the engine's calls produce
(raw C-contiguous arrays of the engine's dimensions, the step scalars), asks CuPy for
the source and compiles it with NVRTC for sm_80 and sm_90, in float32 and float64, with
the options CuPy itself would use plus ``--fmad=false``. The compiler log must be empty.

These are private CuPy APIs (read from CuPy 14.2's ``_kernel.pyx``, ``core.pyx`` and
``compiler.py``): the ``nvrtc`` extra pins CuPy's major version, and if they move the
test skips saying so rather than passing. Needs ``pip install -e ".[nvrtc]"``
(cupy-cuda12x, nvidia-cuda-nvrtc-cu12, nvidia-cuda-runtime-cu12); no GPU, no driver.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from anyrnn.cells import CELLS
from anyrnn.engine import codegen, cuda, cudagen, inplace

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install -e '.[nvrtc]')")
try:
    from cupy._core import _kernel, _scalar, core
    from cupy._core._carray import Indexer
    from cupy.cuda import compiler, nvrtc

    nvrtc.getVersion()
except Exception as exc:  # noqa: BLE001 - a moved API or a missing NVRTC library
    pytest.skip(
        f"CuPy's kernel-assembly API or NVRTC is not usable here ({type(exc).__name__}: {exc}); "
        "pip install -e '.[nvrtc]' (CuPy 14 with the NVRTC and CUDA runtime wheels)",
        allow_module_level=True,
    )

ARRAY, INDEXER, SCALAR = 1, 2, 3  # _ArgKind, cupy/_core/_kernel.pxd


def _ndim(binding: codegen.Binding, buf: str) -> int:
    refs = [r for r in list(binding.params.values()) + list(binding.returns) if r.buf == buf]
    if any(r.vector for r in refs):
        return 1
    return 3 if any(r.time is not None for r in refs) else 2


def cuda_source_as_cupy_builds_it(src: cudagen.CudaSource, binding: codegen.Binding, dtype):
    """The full CUDA source CuPy would hand to NVRTC for the engine's call of ``src``."""
    kernel = cupy.ElementwiseKernel(
        src.in_params, src.out_params, src.body, src.name, no_return=True, options=cuda.OPTIONS
    )
    dtype = np.dtype(dtype)
    n_in = len(src.read) + 3 + len(src.consts)
    in_types = tuple([dtype] * len(src.read) + [None] * (3 + len(src.consts)))
    out_types = tuple([dtype] * len(src.written))
    in_param_types, _, type_map = kernel._decide_params_type(in_types, out_types)
    infos = []
    for name in src.read:
        infos.append(_kernel._ArgInfo(ARRAY, cupy.ndarray, dtype, _ndim(binding, name), True, True))
    for k in range(len(src.read), n_in):
        infos.append(_kernel._ArgInfo(SCALAR, _scalar.CScalar, in_param_types[k], 0, True, True))
    for name in src.written:
        infos.append(_kernel._ArgInfo(ARRAY, cupy.ndarray, dtype, _ndim(binding, name), True, True))
    infos.append(_kernel._ArgInfo(INDEXER, Indexer, None, 1, True, True))
    code = _kernel._get_elementwise_kernel_code(
        tuple(infos),
        type_map,
        kernel.params,
        kernel.operation,
        kernel.name,
        kernel.preamble,
        **kernel.kwargs,
    )
    headers = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    return headers + code


def nvrtc_compile(source: str, arch: str) -> tuple[bytes, str]:
    options = core.assemble_cupy_compiler_options(cuda.OPTIONS)
    options += ("-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space")
    log = io.StringIO()
    binary, _ = compiler._NVRTCProgram(source, "kern.cu", method="cubin").compile(
        options, log_stream=log
    )
    return binary, log.getvalue()


def _cases():
    out = []
    for name, cls in CELLS.items():
        for cell in [cls("relu"), cls("tanh")] if name == "simple" else [cls()]:
            if cell.forward_program is None:
                continue
            label = f"{cell.name}-{getattr(cell, 'activation', '')}".rstrip("-")
            for key, (prog, binding) in inplace._bindings(cell).items():
                out.append(pytest.param(prog, binding, id=f"{label}-{key}"))
    return out


@pytest.mark.parametrize("prog, binding", _cases())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ["80", "90"])
def test_every_generated_kernel_compiles_with_nvrtc(prog, binding, dtype, arch):
    src = cudagen.cuda_source(prog, binding)
    binary, log = nvrtc_compile(cuda_source_as_cupy_builds_it(src, binding, dtype), arch)
    assert log == "", log
    assert binary[:4] == b"\x7fELF"


def test_an_undefined_identifier_fails_to_compile():
    """The check is real: a body NVRTC cannot compile makes the test above fail."""
    cell = CELLS["lstm"]()
    prog, binding = inplace._bindings(cell)["forward"]
    src = cudagen.cuda_source(prog, binding)
    broken = cudagen.CudaSource(
        src.name,
        src.in_params,
        src.out_params,
        src.body.replace("v_half", "bogus", 1),
        src.read,
        src.consts,
        src.written,
    )
    with pytest.raises(compiler.CompileException, match='identifier "bogus" is undefined'):
        nvrtc_compile(cuda_source_as_cupy_builds_it(broken, binding, "float32"), "90")
