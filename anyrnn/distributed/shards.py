"""Which samples are whose: the global numbering of the ranks' shards, and its minibatches.

How the global minibatches are formed
-------------------------------------
Rank ``r`` holds ``n_r`` samples. The samples of all ranks are numbered in rank order:
rank 0's are ``0 .. n_0-1``, rank 1's follow, and so on — the *global* data set is the
concatenation of the shards. Every rank holds the same random stream (rank 0's
generator state is broadcast once per fit), so every epoch every rank draws the *same*
permutation of the ``N = Σ n_r`` global sample numbers, exactly as the one-process fit
draws its permutation of ``N`` samples, and cuts it into the same global minibatches of
``batch_size``. Of each global minibatch a rank takes the samples it holds, in the
permutation's order: a shuffle of its own shard. All ranks therefore run the same
number of steps per epoch (``ceil(N / batch_size)``); a rank may hold few or none of a
minibatch's samples. Its gradient, a mean over its local samples, is weighted by their
count in one all-reduce (an empty local batch sends zeros and still joins), and the
sum divided by the global count: the mean gradient of the global minibatch, as one
process would compute it on all the data, up to the order of floating-point additions.
Every rank then applies the same reduced gradient to the same weights: the replicas
stay bit-identical (MPI gives every rank the same reduction result; check it with
:meth:`Sync.check_replicas`).

Drawing a permutation of ``N`` numbers on every rank costs ``8 N`` bytes and a few ns per
sample per epoch: negligible next to a forward and backward pass of the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["Shards"]


class Shards:
    """How ``n_global`` samples are split over the ranks, in rank order.

    Attributes
    ----------
    sizes : tuple of int
        Samples per rank.
    rank, offset, n_local, n_global : int
        This rank, the global number of its first sample, its count, the total.
    """

    def __init__(self, sizes: tuple[int, ...], rank: int):
        self.sizes, self.rank = tuple(int(s) for s in sizes), rank
        self.offset = sum(self.sizes[:rank])
        self.n_local = self.sizes[rank]
        self.n_global = sum(self.sizes)

    def local(self, idx: np.ndarray) -> np.ndarray:
        """This rank's samples among the global sample numbers ``idx``, as local numbers.

        The order of ``idx`` is kept. With one rank, ``idx`` itself.
        """
        if len(self.sizes) == 1:
            return idx
        idx = np.asarray(idx)
        inside = (idx >= self.offset) & (idx < self.offset + self.n_local)
        return idx[inside] - self.offset

    def rows(self, a: Any) -> Any:
        """This rank's rows of ``a``, an array of all ranks' samples in rank order."""
        return a if len(self.sizes) == 1 else a[self.offset : self.offset + self.n_local]

    def minibatches(
        self, rng: np.random.Generator, batch_size: int
    ) -> Iterator[tuple[np.ndarray, int]]:
        """One epoch: ``(local indices, global minibatch size)`` per step.

        One permutation of the ``n_global`` sample numbers is drawn from ``rng`` (the same
        draw as a one-process fit of all the data), cut into minibatches of
        ``batch_size``; each step yields the local part (maybe empty) of one of them.
        """
        perm = rng.permutation(self.n_global)
        for start in range(0, self.n_global, batch_size):
            batch = perm[start : start + batch_size]
            yield self.local(batch), int(batch.shape[0])
