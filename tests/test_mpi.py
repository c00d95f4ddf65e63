"""Data-parallel training over real MPI ranks: ``mpiexec -n N`` started from pytest.

Each run is bounded by a timeout and, if it overruns, its whole process group is killed.
Skipped (with the reason) only where the ``mpi`` extra is missing; CI installs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "mpi_worker.py"


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")  # the mpich wheel puts it here
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="the mpi extra is missing (mpi4py and an mpiexec): pip install 'anyrnn[mpi]'",
)


def run_mpi(
    n: int, *args: str | Path, timeout: float = 120, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """``mpiexec -n n python args…`` importing this checkout; killed after ``timeout``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # harmless for MPICH; let Open MPI run as root and on more ranks than cores
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
    }
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *map(str, args)]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout kills every rank
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def results(proc: subprocess.CompletedProcess) -> dict:
    """The ``RESULT <scenario> {json}`` lines rank 0 printed, by scenario."""
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            name, payload = line[len("RESULT ") :].split(" ", 1)
            out[name] = json.loads(payload)
    return out


def _readme_mpi_examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"<!-- mpi example: (\S+) -->\n```py\n(.*?)```", text, flags=re.S)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    """One launch of 2 ranks: fit, errors, then the README's MPI scripts."""
    folder = tmp_path_factory.mktemp("readme_mpi")
    for name, code in _readme_mpi_examples():
        (folder / name).write_text(code)
    proc = run_mpi(2, WORKER, "fit", "errors", f"readme={folder}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc, results(proc), folder


@pytest.fixture(scope="module")
def three_ranks() -> tuple[subprocess.CompletedProcess, dict]:
    """One launch of 3 ranks: fit, then rank 1 fails inside a fit (the job aborts)."""
    proc = run_mpi(3, WORKER, "fit", "fail")
    return proc, results(proc)


def check_fit(res: dict) -> None:
    for name, case in res.items():
        assert case["weights"] < 1e-12, (name, case)
        assert case["checked_steps"] > 0, (name, case)
        if "loss" in case:
            assert case["loss"] < 1e-12, (name, case)
            assert case["epochs"][0] == case["epochs"][1], (name, case)
            assert case["rng"] and case["same_state_on_every_rank"], (name, case)
        if "val" in case:
            assert case["val"] < 1e-12 and case["val_loss"] < 1e-12, (name, case)
        if "classes" in case:
            assert case["classes"][0] == case["classes"][1], (name, case)
            assert case["predict_equal"], (name, case)
    for name, epochs in [
        ("classifier_sample_weight_early_stopping", 5),
        ("regressor_unequal_sequences_early_stopping_loss", 8),
    ]:
        assert res[name]["epochs"][1] < epochs, (name, "early stopping should have stopped")
    assert set(res) == {
        "classifier_adam",
        "classifier_lstm_early_stopping",
        "regressor_gru_sequences_strict",
        "classifier_sample_weight_early_stopping",
        "classifier_balanced",
        "classifier_gru_unequal_lengths",
        "regressor_unequal_sequences_early_stopping_loss",
        "classifier_lstm_partial_fit",
        "regressor_warm_start",
        "layers",
    }


def test_two_ranks_fit_equals_one_process_fit(two_ranks):
    """Shards of 13 and 27 samples: the 2-rank fit gives the one-process fit's weights,
    losses, validation scores and losses, classes, early-stopping epoch and random stream
    to float64 rounding, and both ranks hold bit-identical weights after every step
    (checked at each step) and commit the same state; likewise with sample weights,
    class_weight="balanced", lists of unequal-length sequences, early_stopping="loss",
    partial_fit, warm_start, and a hand-written loop with the layer-level helpers."""
    check_fit(two_ranks[1]["fit"])


def test_three_ranks_fit_equals_one_process_fit(three_ranks):
    """Shards of 3, 22 and 15 samples (the small rank is absent from most minibatches, may
    hold no held-out or no training sample, and its sample weights are all 0)."""
    proc, res = three_ranks
    assert "fit" in res, proc.stdout[-3000:] + proc.stderr[-5000:]
    check_fit(res["fit"])


def test_errors_are_raised_on_every_rank_without_hanging(two_ranks):
    res = two_ranks[1]["errors"]
    assert res["nan_on_rank_1"].startswith("ValueError: rank 1 of 2 failed: ValueError: Input X")
    assert "the ranks disagree on X's features" in res["features_differ"]
    assert "X and y have different numbers of samples on rank 1" in res["y_rows"]
    assert res["scratch_n_features"].startswith(
        "ValueError: rank 1 of 2 failed: ValueError: X has 4"
    )
    assert res["hyper_parameters_differ"].startswith(
        "ValueError: the ranks disagree on the hyper-parameters: rank 0: {'epochs': 2}"
    )
    assert res["label_outside_classes"].startswith("ValueError: y has label(s) [7] that are not")
    assert "disagree on classes_" in res["classes_differ"]
    assert "zero for every sample" in res["zero_weights_everywhere"]
    assert res["zero_weights_on_rank_0"] == 2
    assert res["diverged"].startswith("FloatingPointError: training diverged")
    assert res["then_fit"] == 2
    assert res["dropout_streams_differ"]


def test_a_rank_that_raises_aborts_all_ranks_with_its_message(three_ranks):
    """Rank 1 raises at its third minibatch while ranks 0 and 2 wait in the all-reduce:
    the job ends through MPI_Abort with the message. Without the abort, ranks 0 and 2 would
    wait forever and run_mpi would fail the test at its timeout."""
    proc, res = three_ranks
    assert proc.returncode != 0
    assert "anyrnn: rank 1 of 3 failed: RuntimeError: injected failure on rank 1" in proc.stderr
    assert "MPI_Abort" in proc.stderr
    assert "fail" not in res


def test_readme_has_its_mpi_examples():
    assert [name for name, _ in _readme_mpi_examples()] == ["train_mpi.py", "loop_mpi.py"]


def test_readme_mpi_examples_run_on_two_ranks(two_ranks):
    """The README's "many processes" scripts, each run as ``__main__`` on 2 ranks."""
    proc, res, folder = two_ranks
    assert res["readme"]["ran"] == ["loop_mpi.py", "train_mpi.py"]
    assert proc.stdout.count("rank 0 of 2:") == 2 and proc.stdout.count("rank 1 of 2:") == 2
    assert "replicas identical" in proc.stdout
    assert (folder / "digits-mpi.npz").exists()
