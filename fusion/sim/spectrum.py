"""Per-link spectrum state as bitmasks, and the rules over a path's slots.

Each link's free slots are one Python int: bit ``i`` set means slot ``i`` is free. The slots
free on every link of a path are the AND of their masks (:func:`common_free`), so a first-fit
search or a fragmentation figure over a path costs a handful of big-int operations.

This module is the one home of the rules a decision is made by: the action mask
(:func:`path_feasible`), the slots free on every link of a path (:func:`common_free`),
first-fit (:func:`first_fit`, whose last step is :func:`lowest_slot`), a block's length
(:func:`block_at`, :func:`block_count`) and the spectrum rules (:func:`place`). The engine's
path scan (:mod:`fusion.sim.scan`) inlines some of them on its hot path;
``tests/test_engine_rules.py`` checks on random spectra that every inline copy equals these.

    >>> s = SpectrumState(num_links=2, slots=8)
    >>> common = s.common_free((0, 1))
    >>> first_fit(common, 3)
    0
    >>> s.allocate((0, 1), 0, 3); first_fit(s.common_free((0, 1)), 3)
    3
    >>> s.release((0, 1), 0, 3); s.free == [255, 255]
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def path_feasible(slots_needed: int, failed: bool, longest_free_block: int) -> bool:
    """The action-mask rule: can a path carry a request now?

    It can when a modulation format reaches (``slots_needed`` > 0; 0 means out of reach), it
    crosses no failed link, and its links share a free block of at least ``slots_needed``.

    :param slots_needed: Slots the request takes on this path, guard band included.
    :param failed: Whether the path crosses a link that is down.
    :param longest_free_block: The longest block of slots free on every link of the path.

        >>> path_feasible(3, False, 3), path_feasible(0, False, 9), path_feasible(3, True, 9)
        (True, False, False)
    """
    return slots_needed > 0 and not failed and longest_free_block >= slots_needed


def common_free(free: Sequence[int], links: Iterable[int], full: int) -> int:
    """The slots free on every one of ``links``: the AND of their free masks.

    :param free: Every link's free-slot bitmask.
    :param links: The path's link indices.
    :param full: Every slot free (``(1 << slots) - 1``): the answer for no link.

        >>> bin(common_free([0b1110, 0b0111, 0b0001], (0, 1), 0b1111))
        '0b110'
    """
    mask = full
    for link in links:
        mask &= free[link]
    return mask


def lowest_slot(bits: int) -> int:
    """The lowest set bit of ``bits``, -1 when none: first-fit's pick among the starts where
    a block fits (:func:`runs_of`).

    :param bits: A bitmask of slots (or of starts).

        >>> lowest_slot(0b1011_0000), lowest_slot(0)
        (4, -1)
    """
    return (bits & -bits).bit_length() - 1


def block_at(mask: int, start: int) -> int:
    """The length of the block of free slots that begins at ``start`` (0: slot ``start`` is
    taken).

    :param mask: Free-slot bitmask.
    :param start: A slot index.

        >>> block_at(0b0111_0110, 1), block_at(0b0111_0110, 4), block_at(0b0111_0110, 3)
        (2, 3, 0)
    """
    tail = mask >> start
    return (~tail & (tail + 1)).bit_length() - 1


def runs_of(mask: int, n: int) -> int:
    """Bit ``p`` of the result is set iff slots ``p .. p+n-1`` are all free in ``mask``.

    :param mask: Free-slot bitmask.
    :param n: Block length, >= 1.
    """
    have = 1
    while have < n and mask:
        step = have if have + have <= n else n - have  # min(have, n - have), without a call
        mask &= mask >> step
        have += step
    return mask


def first_fit(mask: int, n: int) -> int:
    """Lowest start of ``n`` contiguous free slots in ``mask``, or -1 when there is none.

    :param mask: Free-slot bitmask.
    :param n: Slots needed, >= 1.
    """
    return lowest_slot(runs_of(mask, n))


def longest_run(mask: int) -> int:
    """Length of the longest block of contiguous free slots in ``mask``.

    Doubling: keep the starts of runs of at least ``length`` slots, doubling ``length`` while
    any remain (runs of ``2L`` start where runs of ``L`` start ``L`` apart), then add smaller
    powers of two the same way while a run that long still exists: about ``2 log2(slots)``
    big-int operations, no list.

        >>> longest_run(0b1110_1111_0011), longest_run(0)
        (4, 0)
    """
    if not mask:
        return 0
    length = 1  # mask: the starts of runs of at least `length` slots
    longer = mask & (mask >> 1)
    while longer:
        mask = longer
        length <<= 1
        longer = mask & (mask >> length)
    step = length >> 1  # the longest run is under 2 * length: add the rest bit by bit
    while step:
        longer = mask & (mask >> step)
        if longer:
            mask = longer
            length += step
        step >>= 1
    return length


def last_fit(mask: int, n: int) -> int:
    """Highest start of ``n`` contiguous free slots in ``mask``, or -1 when there is none.

    :param mask: Free-slot bitmask.
    :param n: Slots needed, >= 1.

        >>> last_fit(0b0111_0110, 2), first_fit(0b0111_0110, 2)
        (5, 1)
    """
    return runs_of(mask, n).bit_length() - 1


def free_blocks(mask: int) -> list[tuple[int, int]]:
    """The blocks of contiguous free slots in ``mask`` as ``(start, length)``, lowest first.

    >>> free_blocks(0b0111_0110)
    [(1, 2), (4, 3)]
    """
    blocks = []
    while mask:
        start = lowest_slot(mask)
        length = block_at(mask, start)
        blocks.append((start, length))
        mask &= ~(((1 << length) - 1) << start)
    return blocks


def block_count(mask: int) -> int:
    """How many blocks of contiguous free slots ``mask`` holds."""
    return (mask & ~(mask << 1)).bit_count()


def best_fit(mask: int, n: int) -> tuple[int, int]:
    """``(start, leftover)``: the smallest free block that holds ``n`` slots, at its start
    (ties: the lowest block), and the slots it leaves free; ``(-1, -1)`` when none holds it.

        >>> best_fit(0b1111_0000_0111, 2)
        (0, 1)
    """
    best = (-1, -1)
    for start, length in free_blocks(mask):
        if length >= n and (best[0] < 0 or length - n < best[1]):
            best = (start, length - n)
    return best


def most_used_fit(mask: int, n: int, usage: Sequence[int]) -> int:
    """The start of ``n`` free slots whose first slot is the most used across the network
    (``usage[s]``: links on which slot ``s`` is taken), ties to the lowest; -1 when none.

        >>> most_used_fit(0b1111, 2, [0, 3, 5, 1])
        2
    """
    starts = runs_of(mask, n)
    best, best_use = -1, -1
    while starts:
        start = lowest_slot(starts)
        if usage[start] > best_use:
            best, best_use = start, usage[start]
        starts &= starts - 1
    return best


def place(rule: str, mask: int, n: int, usage: Sequence[int] | None = None) -> int:
    """Where a spectrum rule puts ``n`` slots in ``mask``: ``first_fit``, ``last_fit``,
    ``best_fit`` or ``most_used`` (needs ``usage``); -1 when they do not fit.

        >>> [place(rule, 0b1110_0111, 2, [0] * 8) for rule in ("first_fit", "last_fit")]
        [0, 6]
    """
    if rule == "first_fit":
        return first_fit(mask, n)
    if rule == "last_fit":
        return last_fit(mask, n)
    if rule == "best_fit":
        return best_fit(mask, n)[0]
    if rule == "most_used":
        if usage is None:
            raise ValueError("most_used needs the network's slot usage")
        return most_used_fit(mask, n, usage)
    raise ValueError(f"unknown spectrum rule {rule!r}")


class SpectrumState:
    """Free-slot bitmasks and free-slot counts of every link.

    :param num_links: Number of links.
    :param slots: Slots per link (the C-band grid).
    :param track_usage: Keep ``usage[s]``, the number of links on which slot ``s`` is taken
        (the most-used spectrum rule reads it; off, it costs nothing).
    """

    def __init__(self, num_links: int, slots: int, *, track_usage: bool = False) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.full = (1 << slots) - 1
        self.free: list[int] = [self.full] * num_links
        self.free_count: list[int] = [slots] * num_links
        self.usage: list[int] | None = [0] * slots if track_usage else None

    def common_free(self, links: Sequence[int]) -> int:
        """Slots free on every one of ``links`` (:func:`common_free` over this state)."""
        return common_free(self.free, links, self.full)

    def allocate(self, links: Sequence[int], start: int, n: int) -> None:
        """Take slots ``start .. start+n-1`` on every link.

        :raises ValueError: when a slot is already taken (nothing is changed then).
        """
        block = ((1 << n) - 1) << start
        if start < 0 or start + n > self.slots:
            raise ValueError(f"block {start}..{start + n - 1} is outside 0..{self.slots - 1}")
        free, count = self.free, self.free_count
        for link in links:
            if free[link] & block != block:
                raise ValueError(f"slots {start}..{start + n - 1} are not all free on link {link}")
        taken = ~block
        for link in links:
            free[link] &= taken
            count[link] -= n
        if self.usage is not None:
            for slot in range(start, start + n):
                self.usage[slot] += len(links)

    def release(self, links: Sequence[int], start: int, n: int) -> None:
        """Give back slots ``start .. start+n-1`` on every link.

        :raises ValueError: when a slot was not taken (nothing is changed then).
        """
        block = ((1 << n) - 1) << start
        free, count = self.free, self.free_count
        for link in links:
            if free[link] & block:
                raise ValueError(
                    f"slots {start}..{start + n - 1} were not all taken on link {link}"
                )
        for link in links:
            free[link] |= block
            count[link] += n
        if self.usage is not None:
            for slot in range(start, start + n):
                self.usage[slot] -= len(links)
