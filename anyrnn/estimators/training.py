"""The fit loop: epochs of shuffled minibatches, monitoring, early stopping.

``_Training._train`` runs the epochs (one gradient and one optimizer step per
minibatch, one device sync per epoch); ``_Monitor`` keeps the curves and decides, in
one place, on divergence (``_Diverged``) and early stopping; ``_split`` holds out the
validation part and ``_evaluate`` scores it. Over MPI ranks the minibatches, the split
and the validation are global (:class:`~anyrnn.distributed.Sync`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from ..distributed import Sync
from .data import _Data, _held_out_of_every_rank
from .network import Network

if TYPE_CHECKING:
    from .base import _Hyper

__all__ = ["_Diverged", "_Monitor", "_Training", "_all_finite"]


def _all_finite(xp: Any, weights: list[dict]) -> bool:
    flags = [xp.all(xp.isfinite(w)) for layer in weights for w in layer.values()]
    ok = flags[0]
    for f in flags[1:]:
        ok = xp.logical_and(ok, f)
    return bool(ok)


class _Diverged(Exception):
    def __init__(self, epoch: int, loss: float):
        super().__init__(epoch, loss)
        self.epoch, self.loss = epoch, loss


class _Monitor:
    """Per-epoch bookkeeping: curves, divergence and early stopping, decided in one place.

    Over ranks (``sync``) every rank holds the same global loss, validation values and
    weights, so every rank decides alike; the decisions are still taken together
    (``sync.any``), so that no rank can stop while another waits for it.
    """

    def __init__(self, mode: str | None, tol: float, patience: int, network: Network, sync: Sync):
        self.mode, self.tol, self.patience, self.sync = mode, tol, patience, sync
        self.loss_curve: list[float] = []
        self.val_scores: list[float] = []
        self.val_losses: list[float] = []
        self.epoch_times: list[float] = []
        self.best: float | None = None
        self.best_weights: list[dict] | None = None
        self.best_index: int | None = None
        self.no_improve = 0
        self.last_good = network.get_weights()

    def end_epoch(
        self,
        network: Network,
        epoch_loss: float,
        seconds: float,
        val_loss: float | None,
        val_score: float | None,
    ) -> bool:
        """Record one epoch; raise ``_Diverged`` or return whether to stop early."""
        weights = network.get_weights()
        finite = math.isfinite(epoch_loss) and _all_finite(network.layers[0].xp, weights)
        if self.sync.any(not finite):
            raise _Diverged(len(self.loss_curve) + 1, epoch_loss)
        self.last_good = weights
        self.loss_curve.append(epoch_loss)
        self.epoch_times.append(seconds)
        if self.mode is None:
            return False
        self.val_losses.append(val_loss)
        self.val_scores.append(val_score)
        value = val_score if self.mode == "score" else -val_loss
        if not math.isfinite(value):  # the same value on every rank: raised on all
            raise self.sync.collective(
                ValueError(
                    f"the validation {self.mode} is "
                    f"{value if self.mode == 'score' else val_loss} in epoch "
                    f"{len(self.loss_curve)}: early stopping cannot compare epochs. Use a "
                    "larger validation_fraction or early_stopping=False."
                )
            )
        if self.best is None or value > self.best + self.tol:
            self.best, self.best_weights, self.no_improve = value, weights, 0
            self.best_index = len(self.loss_curve) - 1
        else:
            self.no_improve += 1
        return self.sync.any(self.no_improve >= self.patience)


class _Training:
    """The fit loop of :class:`~anyrnn.estimators.base._RNNEstimator` (a mixin).

    Subclasses give the loss (``_loss``), the score of held-out outputs (``_score_out``)
    and whether the split is stratified (``_stratify``).
    """

    def _train(
        self,
        network: Network,
        optimizer: Any,
        train: _Data,
        val: _Data | None,
        monitor: _Monitor,
        rng: np.random.Generator,
        backend: Any,
        hp: _Hyper,
        partial: bool,
        sync: Sync,
    ) -> None:
        """The epochs: shuffled minibatches, one gradient and one optimizer step each.

        Four places, each in one line: the minibatch gradient (``self._gradient``), the
        optimizer step, the epoch loss (``total``, one device sync per epoch) and every
        decision to stop (``monitor.end_epoch``: divergence, early stopping).

        Over ranks, the minibatches are global: the samples of all ranks are numbered in
        rank order and shuffled as one process shuffles them all; each rank computes the
        gradient of the samples it holds of a minibatch (maybe none), and
        ``sync.allreduce_grads`` makes it the minibatch's mean gradient before the step.
        """
        epochs = 1 if partial else hp.epochs
        shards = sync.shards(train.n)  # the training samples of every rank
        bar = tqdm(
            range(epochs),
            disable=not (self.verbose and sync.is_root),
            desc=type(self).__name__,
            unit="epoch",
            leave=True,
        )
        try:
            for _ in bar:
                t0 = time.perf_counter()
                total = None
                for sel, _ in shards.minibatches(rng, hp.batch_size):  # this rank's part of each
                    if sel.shape[0]:
                        batch = train.batch(sel, backend)
                        loss = self._gradient(network, batch)  # sets every layer's grads
                        part = loss * sel.shape[0]
                        total = part if total is None else total + part
                    sync.allreduce_grads(network.layers, sel.shape[0])
                    optimizer.step(network.layers)
                local = 0.0 if total is None else float(total)  # one device sync per epoch
                epoch_loss = sync.sum(local) / shards.n_global
                postfix = {"loss": f"{epoch_loss:.4f}"}
                val_loss = val_score = None
                if val is not None:
                    val_loss, val_score = self._evaluate(network, val, backend, sync)
                    postfix.update(val_loss=f"{val_loss:.4f}", val_score=f"{val_score:.4f}")
                stop = monitor.end_epoch(
                    network, epoch_loss, time.perf_counter() - t0, val_loss, val_score
                )
                bar.set_postfix(postfix)
                if stop:
                    break
        finally:
            bar.close()

    def _gradient(self, network: Network, batch: tuple) -> Any:
        """Forward and backward over one minibatch; returns its loss (a 0-D array)."""
        X, lengths, y, w = batch
        out = network.forward(X, lengths)
        loss, d_out = self._loss(out, y, w)
        network.backward(d_out)
        return loss

    def _evaluate(
        self, network: Network, data: _Data, backend: Any, sync: Sync
    ) -> tuple[float, float]:
        """Loss and score of held-out data (no gradients), over every rank's."""
        out = lengths = None
        loss = 0.0
        if data.n:  # a rank may hold none of the held-out samples
            X, lengths, y, w = data.batch(None, backend)
            out = network.infer(X, lengths)
            loss = float(self._loss(out, y, w)[0])
        loss = sync.mean(loss, data.n)
        if sync.size > 1:  # score every rank's outputs and targets, joined on the host
            out, data, lengths = _held_out_of_every_rank(sync, out, data, lengths)
        return loss, self._score_out(out, data, lengths)

    def _split(
        self,
        data: _Data,
        hp: _Hyper,
        backend: Any,
        rng: np.random.Generator,
        info: dict,
        labels: np.ndarray | None,
        sync: Sync,
    ) -> tuple[_Data, _Data]:
        """The training and validation parts (over ranks: the split of all the ranks'
        samples, stratified by all their ``labels``; each rank keeps its own of each)."""
        shards = sync.shards(data.n)
        with sync.together():  # the same on every rank
            idx_train, idx_val = self._split_indices(shards.n_global, hp, rng, info, labels)
        idx_train, idx_val = shards.local(idx_train), shards.local(idx_val)
        return data.subset(idx_train, backend), data.subset(idx_val, backend)

    def _split_indices(
        self, n: int, hp: _Hyper, rng: np.random.Generator, info: dict, labels: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        n_val = math.ceil(hp.validation_fraction * n)
        stratify = labels if self._stratify else None
        if n - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} of {n} samples leaves no "
                "sample to train on; lower validation_fraction or set early_stopping=False"
            )
        if hp.early_stopping == "score":
            self._check_scorable(n_val, n)
        if stratify is not None:
            classes, counts = np.unique(stratify, return_counts=True)
            if n_val < classes.size or n - n_val < classes.size:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} holds out {n_val} of {n} "
                    f"samples, but early stopping splits by class and y has {classes.size} "
                    "classes: both parts need at least one sample of each. Raise "
                    "validation_fraction (or lower it), use more data, or set "
                    "early_stopping=False."
                )
            if counts.min() < 2:
                label = info["classes_"][classes[np.argmin(counts)]]
                raise ValueError(
                    f"early stopping splits by class, and class {label!r} has only 1 sample: "
                    "it cannot be in both the training and the validation part. Use more data "
                    "or set early_stopping=False."
                )
        idx_train, idx_val = train_test_split(
            np.arange(n),
            test_size=n_val,
            stratify=stratify,
            random_state=int(rng.integers(2**31 - 1)),
        )
        return np.sort(idx_train), idx_val

    def _check_scorable(self, n_val: int, n: int) -> None:
        pass
