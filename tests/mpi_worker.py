"""What each rank runs under ``mpiexec -n N`` for tests/test_mpi.py (not collected by pytest).

    mpiexec -n 2 python tests/mpi_worker.py fit errors readme=DIR
    mpiexec -n 3 python tests/mpi_worker.py fit fail

Scenarios, run in the order given (starting the ranks, mostly imports, costs more than
the scenarios, so one launch runs several):

``fit``
    the distributed fit equals the one-process fit; replicas equal after every step.
``errors``
    errors raised on every rank together, no hang; the communicator still trains after.
``readme=DIR``
    the README's MPI scripts, written into DIR by the test, run as ``__main__`` in DIR.
``fail``
    rank 1 raises inside fit while the others wait: the guard aborts every rank.

Every rank builds the same global data set; rank r keeps its shard (sizes from SHARDS)
and also fits the one-process reference on all of it, so each rank can compare. After
each scenario rank 0 prints ``RESULT <name> {json}``; a failed check raises (and,
raised on one rank, aborts the job).
"""

from __future__ import annotations

import json
import os
import runpy
import sys

import joblib
import numpy as np
from mpi4py import MPI

import anyrnn
from anyrnn.distributed import allreduce_grads, broadcast_params, check_replicas
from anyrnn.train import optimizers

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
#: unequal shard sizes of the 40 samples, per number of ranks
SHARDS = {1: [40], 2: [13, 27], 3: [3, 22, 15]}
N, T, F = 40, 5, 3

_steps = {"n": 0}
_original_step = optimizers.Optimizer.step


def _checked_step(self, layers):
    """The optimizer step, then a check that every rank holds the same bits."""
    _original_step(self, layers)
    if _steps.get("comm") is not None:
        check_replicas(layers, _steps["comm"])
        _steps["n"] += 1


optimizers.Optimizer.step = _checked_step


def shard(a: np.ndarray | list | None) -> np.ndarray | list | None:
    if a is None:
        return None
    sizes = SHARDS[size]
    lo = sum(sizes[:rank])
    return a[lo : lo + sizes[rank]]


def data() -> dict:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N, T, F))
    labels = np.array(["a", "b", "c"])[rng.integers(0, 2, N)]
    labels[-4:] = "c"  # class "c" only in the last shard: classes_ must be global
    out = {"X": X, "y3": labels, "y2": rng.integers(0, 2, N), "yseq": rng.normal(size=(N, T, 2))}
    # sequences of 2 to 8 steps and one of 10, in the last shard: every rank pads and trims
    # its minibatches to its own longest sequence
    seqs = [rng.normal(size=(int(rng.integers(2, 9)), F)) for _ in range(N - 1)]
    seqs.append(rng.normal(size=(10, F)))
    weights = rng.uniform(0.0, 2.0, N)
    weights[:3] = 0.0  # with 3 ranks, rank 0's weights are all 0
    out["seqs"], out["weights"] = seqs, weights
    out["seq_targets"] = [np.cumsum(s[:, :2], axis=0) for s in seqs]  # per step
    return out


def max_rel(a: list, b: list) -> float:
    err = 0.0
    for x, y in zip(a, b):
        x, y = anyrnn.to_numpy(x), anyrnn.to_numpy(y)
        scale = max(float(np.max(np.abs(y))), 1e-300)
        err = max(err, float(np.max(np.abs(x - y))) / scale)
    return err


def params(est) -> list:
    return [v for layer in est.network_.layers for v in layer.params.values()]


def fitted_state(est) -> str:
    """A digest of everything a fit commits but the timings (weights, curves, classes,
    the random stream, the optimizer's state)."""
    opt = est._optimizer
    return joblib.hash(
        [
            [anyrnn.to_numpy(v) for v in params(est)],
            [getattr(est, k) for k in ("loss_curve_", "n_iter_", "_n_out")],
            [getattr(est, k) for k in ("validation_scores_", "validation_loss_curve_")],
            [getattr(est, k) for k in ("best_validation_score_", "best_validation_loss_")],
            list(map(str, getattr(est, "classes_", []))),
            repr(est._rng.bit_generator.state),
            [(k, anyrnn.to_numpy(v)) for k, v in sorted(opt.state.items())],
            opt.iterations,
        ]
    )


def compare_fit(
    name: str, make, X, y, *, sample_weight=None, calls: int = 1, partial=False, classes=None
) -> dict:
    """``calls`` calls of fit (or partial_fit) on every rank's shard with ``comm`` against
    those of one process on all the data (with ``comm=None``)."""

    def run(est, X, y, sample_weight, comm):
        kw = {} if classes is None else {"classes": classes}
        for _ in range(calls):
            if partial:
                est.partial_fit(X, y, sample_weight=sample_weight, comm=comm, **kw)
            else:
                est.fit(X, y, sample_weight, comm=comm)
        return est

    _steps["comm"] = None
    ref = run(make(), X, y, sample_weight, None)
    _steps["comm"], _steps["n"] = comm, 0
    dist = run(make(), shard(X), shard(y), shard(sample_weight), comm)
    _steps["comm"] = None
    check_replicas(dist.network_, comm)
    out = {
        "weights": max_rel(params(dist), params(ref)),
        "loss": max_rel([np.array(dist.loss_curve_)], [np.array(ref.loss_curve_)]),
        "epochs": [dist.n_iter_, ref.n_iter_],
        "checked_steps": _steps["n"],
        "rng": dist._rng.bit_generator.state == ref._rng.bit_generator.state,
        "same_state_on_every_rank": len(set(comm.allgather(fitted_state(dist)))) == 1,
    }
    if ref.validation_scores_ is not None:
        out["val"] = max_rel(
            [np.array(dist.validation_scores_)], [np.array(ref.validation_scores_)]
        )
        out["val_loss"] = max_rel(
            [np.array(dist.validation_loss_curve_)], [np.array(ref.validation_loss_curve_)]
        )
    if hasattr(ref, "classes_"):
        out["classes"] = [list(map(str, dist.classes_)), list(map(str, ref.classes_))]
        out["predict_equal"] = bool(np.array_equal(dist.predict(X), ref.predict(X)))
    return {name: out}


def layer_loop() -> dict:
    """The README's layer example made data-parallel: a hand-written loop, two added lines."""
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(N, T, F)), rng.normal(size=(N, 2))
    results = {}
    for mode in ("ref", "dist"):
        kw = dict(backend="numpy", dtype="float64")
        rnn = anyrnn.SimpleRNN(F, 6, random_state=100 + (rank if mode == "dist" else 0), **kw)
        head = anyrnn.Dense(6, 2, random_state=200 + (rank if mode == "dist" else 0), **kw)
        layers = [rnn, head]
        opt = anyrnn.optimizers.Adam(0.01)
        batch_rng = np.random.default_rng(11)
        if mode == "dist":
            broadcast_params(layers, comm)  # line 1: rank 0's initial weights everywhere
        n_steps = 0
        for _ in range(3):
            for idx in np.array_split(batch_rng.permutation(N), 4):  # global minibatches
                if mode == "dist":
                    lo = sum(SHARDS[size][:rank])
                    idx = idx[(idx >= lo) & (idx < lo + SHARDS[size][rank])]
                if idx.shape[0]:
                    out = head.forward(rnn.forward(X[idx]))
                    _, d_out = anyrnn.losses.mean_squared_error(out, Y[idx])
                    rnn.backward(head.backward(d_out))
                if mode == "dist":
                    allreduce_grads(layers, comm, n=idx.shape[0])  # line 2: the global mean
                opt.step(layers)
                if mode == "dist":
                    check_replicas(layers, comm)
                    n_steps += 1
        results[mode] = [v for layer in layers for v in layer.params.values()]
    return {
        "layers": {"weights": max_rel(results["dist"], results["ref"]), "checked_steps": n_steps}
    }


def scenario_fit() -> dict:
    d = data()
    X = d["X"]
    res = {}
    res.update(
        compare_fit(
            "classifier_adam",
            lambda: anyrnn.RNNClassifier(
                n_nodes=8, batch_size=8, epochs=3, lr=0.01, dtype="float64", random_state=0
            ),
            X,
            d["y3"],
        )
    )
    res.update(
        compare_fit(
            "classifier_lstm_early_stopping",
            lambda: anyrnn.RNNClassifier(
                n_nodes=6,
                cell="lstm",
                optimizer="momentum",
                clip_norm=1.0,
                batch_size=6,
                epochs=6,
                early_stopping=True,
                n_iter_no_change=2,
                validation_fraction=0.25,
                dtype="float64",
                random_state=1,
            ),
            X,
            d["y2"],
        )
    )
    res.update(
        compare_fit(
            "regressor_gru_sequences_strict",
            lambda: anyrnn.RNNRegressor(
                n_nodes=5,
                cell="gru",
                optimizer="sgd",
                lr=0.05,
                batch_size=16,
                epochs=3,
                early_stopping=True,
                backend="array_api_strict",
                dtype="float64",
                random_state=2,
            ),
            X,
            d["yseq"],
        )
    )
    res.update(
        compare_fit(
            "classifier_sample_weight_early_stopping",
            lambda: anyrnn.RNNClassifier(
                n_nodes=6,
                batch_size=8,
                epochs=5,
                early_stopping=True,
                validation_fraction=0.3,
                n_iter_no_change=2,
                dtype="float64",
                random_state=3,
            ),
            X,
            d["y3"],
            sample_weight=d["weights"],
        )
    )
    res.update(
        compare_fit(
            "classifier_balanced",
            lambda: anyrnn.RNNClassifier(
                n_nodes=6,
                batch_size=8,
                epochs=3,
                class_weight="balanced",
                dtype="float64",
                random_state=4,
            ),
            X,
            d["y3"],
        )
    )
    res.update(
        compare_fit(
            "classifier_gru_unequal_lengths",
            lambda: anyrnn.RNNClassifier(
                n_nodes=5, cell="gru", batch_size=8, epochs=3, dtype="float64", random_state=5
            ),
            d["seqs"],
            d["y2"],
        )
    )
    res.update(
        compare_fit(
            "regressor_unequal_sequences_early_stopping_loss",
            lambda: anyrnn.RNNRegressor(
                n_nodes=5,
                batch_size=8,
                epochs=8,
                lr=0.05,
                early_stopping="loss",
                validation_fraction=0.3,
                n_iter_no_change=1,
                dtype="float64",
                random_state=6,
            ),
            d["seqs"],
            d["seq_targets"],
            sample_weight=d["weights"],
        )
    )
    res.update(
        compare_fit(
            "classifier_lstm_partial_fit",
            lambda: anyrnn.RNNClassifier(
                n_nodes=5, cell="lstm", batch_size=8, dtype="float64", random_state=7
            ),
            d["seqs"],
            d["y3"],
            sample_weight=d["weights"],
            calls=3,
            partial=True,
            classes=["a", "b", "c"],
        )
    )
    res.update(
        compare_fit(
            "regressor_warm_start",
            lambda: anyrnn.RNNRegressor(
                n_nodes=5, batch_size=8, epochs=2, warm_start=True, dtype="float64", random_state=8
            ),
            X,
            X[:, -1, :2],
            calls=2,
        )
    )
    res.update(layer_loop())
    return res


def expect(exc_type, fn, *, contains: str) -> str:
    try:
        fn()
    except exc_type as exc:
        if contains not in str(exc):
            raise AssertionError(f"{exc_type.__name__} without {contains!r}: {exc}") from exc
        return f"{exc_type.__name__}: {str(exc)[:100]}"
    raise AssertionError(f"no {exc_type.__name__} raised")


def scenario_errors() -> dict:
    d = data()
    X, y = shard(d["X"]), shard(d["y2"])
    est = anyrnn.RNNClassifier(n_nodes=4, epochs=2, random_state=0)
    out = {}
    bad = X.copy()
    if rank == 1:
        bad[0, 0, 0] = np.nan  # one rank's bad input: a ValueError on every rank
    out["nan_on_rank_1"] = expect(ValueError, lambda: est.fit(bad, y, comm=comm), contains="NaN")
    wide = np.concatenate([X, X[:, :, :1]], axis=2) if rank == 1 else X
    out["features_differ"] = expect(
        ValueError, lambda: est.fit(wide, y, comm=comm), contains="disagree"
    )
    scratch = anyrnn.ScratchSimpleRNNClassifier(n_nodes=4, n_features=F, epochs=1)
    out["scratch_n_features"] = expect(
        ValueError, lambda: scratch.fit(wide, y, comm=comm), contains="n_features=3"
    )
    short_y = y[:-1] if rank == 1 else y
    out["y_rows"] = expect(
        ValueError, lambda: est.fit(X, short_y, comm=comm), contains="numbers of samples"
    )
    epochs = anyrnn.RNNClassifier(n_nodes=4, epochs=2 + (rank == 1), random_state=0)
    out["hyper_parameters_differ"] = expect(
        ValueError, lambda: epochs.fit(X, y, comm=comm), contains="{'epochs': 3}"
    )
    unknown = np.where(np.arange(len(y)) == 0, 7, y) if rank == 1 else y
    out["label_outside_classes"] = expect(
        ValueError,
        lambda: est.partial_fit(X, unknown, classes=[0, 1], comm=comm),
        contains="label(s) [7]",
    )
    out["classes_differ"] = expect(
        ValueError,
        lambda: est.partial_fit(X, y, classes=[0, 1, 2][: 2 + rank], comm=comm),
        contains="disagree on classes_",
    )
    # rank 0's weights are all 0 (allowed), but all of them: refused on every rank
    zero = np.zeros(len(y))
    out["zero_weights_everywhere"] = expect(
        ValueError, lambda: est.fit(X, y, zero, comm=comm), contains="zero for every sample"
    )
    some = np.zeros(len(y)) if rank == 0 else np.ones(len(y))
    est.fit(X, y, some, comm=comm)
    out["zero_weights_on_rank_0"] = est.n_iter_
    diverging = anyrnn.RNNRegressor(n_nodes=4, optimizer="sgd", lr=1e6, epochs=5, random_state=0)
    out["diverged"] = expect(
        FloatingPointError,
        lambda: diverging.fit(X, shard(d["yseq"]) * 1e6, comm=comm),
        contains="diverged",
    )
    # after all that the communicator still works: a normal fit
    est.fit(X, y, comm=comm)
    check_replicas(est.network_, comm)
    out["then_fit"] = est.n_iter_
    # dropout: each rank draws its own masks from its own stream (not the one-process
    # fit's masks); the replicas stay identical
    starts = []
    forward = anyrnn.Stacked.forward

    def recording(self, X, **kw):
        starts.append(repr(self._rng.bit_generator.state))
        return forward(self, X, **kw)

    anyrnn.Stacked.forward = recording
    try:
        deep = anyrnn.RNNClassifier(n_nodes=4, num_layers=2, dropout=0.5, epochs=2, random_state=0)
        deep.fit(X, y, comm=comm)
    finally:
        anyrnn.Stacked.forward = forward
    check_replicas(deep.network_, comm)
    first = comm.allgather(starts[0])
    out["dropout_streams_differ"] = len(set(first)) == size
    return out


class FailingClassifier(anyrnn.RNNClassifier):
    """Raises on rank 1 at its third minibatch, while rank 0 waits in the all-reduce."""

    def _loss(self, out, y, w):
        self._calls = getattr(self, "_calls", 0) + 1
        if rank == 1 and self._calls == 3:
            raise RuntimeError("injected failure on rank 1")
        return super()._loss(out, y, w)


def scenario_readme(folder: str) -> dict:
    here = os.getcwd()
    os.chdir(folder)
    try:
        names = sorted(n for n in os.listdir(".") if n.endswith(".py"))
        for name in names:
            runpy.run_path(name, run_name="__main__")
    finally:
        os.chdir(here)
    return {"ran": names}


def scenario_fail() -> dict:
    d = data()
    FailingClassifier(n_nodes=4, batch_size=4, epochs=50, random_state=0).fit(
        shard(d["X"]), shard(d["y2"]), comm=comm
    )
    return {"unreachable": True}


SCENARIOS = {"fit": scenario_fit, "errors": scenario_errors, "fail": scenario_fail}

if __name__ == "__main__":
    for arg in sys.argv[1:]:
        name, _, value = arg.partition("=")
        with np.errstate(over="ignore", invalid="ignore"):  # the diverging fit overflows
            out = scenario_readme(value) if name == "readme" else SCENARIOS[name]()
        if rank == 0:
            print(f"RESULT {name} " + json.dumps(out), flush=True)
