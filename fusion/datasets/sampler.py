"""Seeded minibatches whose content depends only on the dataset and the seed.

:func:`~fusion.datasets.arrays.to_arrays` puts rows in ``(seed, t)`` order whatever the number
of shards, their write order or the threads that parsed them; the sampler permutes those rows
with a generator drawn from ``SeedSequence([seed, epoch])``. So the same transitions give the
same batches, read from one merged file or from 64 shards. With ``world_size`` workers, each
global batch is split by stride: worker ``r`` takes rows ``r, r + W, ...`` of it, and the
workers' parts together are exactly the one-worker batch.

    >>> sampler = MinibatchSampler(10, batch_size=4, seed=0)
    >>> [len(b) for b in sampler.epoch(0)]
    [4, 4, 2]
    >>> sorted(int(i) for b in sampler.epoch(0) for i in b) == list(range(10))
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fusion.datasets.arrays import TransitionArrays


class MinibatchSampler:
    """Row indices of shuffled minibatches, epoch by epoch.

    :param size: Rows in the dataset.
    :param batch_size: Rows per global batch.
    :param seed: The sampling seed.
    :param drop_last: Drop a last batch shorter than ``batch_size``.
    :param rank: This worker's index, ``0 <= rank < world_size``.
    :param world_size: Workers sharing each global batch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        *,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in 0 .. world_size-1 = {world_size - 1}, got {rank}")
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.size, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, epoch: int) -> Iterator[np.ndarray]:
        """This worker's row indices for each batch of one epoch.

        :param epoch: The epoch number (part of the random stream's seed).
        """
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        order = rng.permutation(self.size)
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield batch[self.rank :: self.world_size]


def iter_minibatches(
    data: TransitionArrays, sampler: MinibatchSampler, epoch: int
) -> Iterator[dict[str, np.ndarray]]:
    """Minibatches of every array of ``data``, as dicts of name -> rows.

    :param data: The arrays.
    :param sampler: A sampler of ``len(data)`` rows.
    :param epoch: The epoch number.
    """
    if sampler.size != len(data):
        raise ValueError(f"the sampler is for {sampler.size} rows, the data has {len(data)}")
    arrays = data.arrays()
    for rows in sampler.epoch(epoch):
        yield {name: array[rows] for name, array in arrays.items()}
