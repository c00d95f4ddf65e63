"""The command line: the demo (main job) and the cross-backend check."""

from __future__ import annotations

import subprocess
import sys

import pytest

import anyrnn
from anyrnn.cli import main


def test_demo_trains_and_writes_the_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the demo's plot needs matplotlib")
    plot = tmp_path / "curves.png"
    assert main(["demo", "--epochs", "3", "--plot", str(plot), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy:" in out and "time per epoch:" in out
    accuracy = float(out.split("held-out accuracy:")[1].split()[0])
    assert 0.5 < accuracy <= 1.0  # 3 epochs already learn most digits
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_plot(capsys):
    assert main(["demo", "--epochs", "1", "--plot", "none", "--quiet"]) == 0
    assert "curves written" not in capsys.readouterr().out


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs must be at least 1; got 0" in capsys.readouterr().err


def test_check_compares_every_backend(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "VERDICT: every backend agrees with NumPy" in out
    for backend in anyrnn.available_backends():
        for engine in ("auto", "generic"):
            assert f"lstm     {backend:18} {engine:8}" in out


def test_check_reports_a_disagreement_and_fails(capsys, monkeypatch):
    from anyrnn import diagnose

    real = diagnose.compare
    monkeypatch.setattr(
        diagnose,
        "compare",
        lambda cell, b, d, f: (
            {**real(cell, b, d, f), "dW_h": 0.5} if cell == "gru" else real(cell, b, d, f)
        ),
    )
    assert main(["check", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREES" in out and "VERDICT: something disagrees" in out


def test_check_of_cupy_without_a_gpu_gives_a_verdict_naming_the_problem(capsys):
    if anyrnn.backend._status("cupy")[0]:
        pytest.skip("a GPU is usable here: the verdict is the real one")
    assert main(["check", "--backend", "cupy"]) == 1
    out = capsys.readouterr().out
    assert "CuPy set-up:" in out and "VERDICT: CuPy cannot be used here" in out


def test_module_entry_point():
    res = subprocess.run([sys.executable, "-m", "anyrnn", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "demo" in res.stdout and "check" in res.stdout


def test_bench_reports_time_and_gflops(capsys):
    assert main(["bench", "--cell", "gru", "--shape", "4,3,2,5", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "gru T=4 batch=3 features=2 nodes=5 float32 on numpy" in out
    assert "ms per forward + BPTT" in out and "GFLOP/s" in out


def test_bench_rejects_a_bad_shape(capsys):
    assert main(["bench", "--shape", "4,3,2"]) == 2
    assert "four positive ints" in capsys.readouterr().err


def test_kernels_compile_reports_each_cell_and_dtype(capsys):
    assert main(["kernels", "--compile", "--cell", "simple"]) == 0
    out = capsys.readouterr().out
    for label in ("simple (tanh) float32", "simple (relu) float64"):
        assert label in out
    assert "cache folder:" in out


def test_kernels_show_prints_the_compiled_loops(capsys):
    assert main(["kernels", "--show", "--cell", "lstm", "--target", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "def lstm_forward_loop(gemm, tanh," in out and "def lstm_backward_loop(" in out
