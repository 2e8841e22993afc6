"""The path scan: a decision's mask and state, read from the live spectrum.

Three scans over a pair's candidates, one per need, each a single pass:

- :meth:`PathScan.first_fitting`: the first path that can carry the request and where the
  spectrum rule puts it (KSP-FF's family with nothing logged: the paths after it are never
  looked at);
- :meth:`PathScan.fits`: the mask, each path's common free slots and the starts where the
  request fits (a policy that reads no state);
- :meth:`PathScan.state`: the seed card's state (with the mask and the commons when asked),
  the record's ``state`` object.

The rules they apply live in :mod:`fusion.sim.spectrum` (:func:`~fusion.sim.spectrum.path_feasible`,
:func:`~fusion.sim.spectrum.common_free`, :func:`~fusion.sim.spectrum.first_fit`,
:func:`~fusion.sim.spectrum.block_at`, :func:`~fusion.sim.spectrum.block_count`); on this hot
path they are inlined (a call per path costs a few percent of a run), and
``tests/test_engine_rules.py`` checks on random spectra that the scans equal those rules. The
per-path dict literals and the padding rows below spell the declared path features
(:func:`fusion.config.features.path_features`) in order; a test checks that they do.

    >>> from fusion.sim.pairs import Pair
    >>> from fusion.sim.spectrum import SpectrumState
    >>> spectrum = SpectrumState(num_links=2, slots=8)
    >>> spectrum.allocate((0,), 0, 3)
    >>> scan = PathScan(spectrum, k=2, extended=False, log_spectrum=False, mean_holding=None)
    >>> pair = Pair([(0, 1)], [2], {100: [4]}, {100: 4}, [[True]], [-1], [False], [80.0], {})
    >>> scan.first_fitting(pair, [4])
    (0, 3)
    >>> commons, mask = [], []
    >>> state = scan.state((0.0, 1.5, 0, 3, 100), pair, [4], False, commons, mask)
    >>> state["paths"][0]["min_residual_slots"], bin(commons[0]), mask
    (5, '0b11111000', [True, False])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fusion.sim.pairs import Pair
from fusion.sim.spectrum import SpectrumState, longest_run, place, runs_of

#: A request's row: ``(arrival, holding, src, dst, bit_rate)``.
Request = tuple[float, float, int, int, int]


def fragmentation(longest: int, total: int) -> float:
    """``frag_indicator``: ``1 - longest / total``, rounded to 4 decimals; 0.0 for one block
    or none.

    :param longest: The longest block of slots free on every link of the path.
    :param total: All such free slots.

        >>> fragmentation(3, 4), fragmentation(4, 4), fragmentation(0, 0)
        (0.25, 0.0, 0.0)
    """
    return round(1.0 - longest / total, 4) if longest != total else 0.0


def mean_block_size(total: int, blocks: int) -> float:
    """``mean_block_size``: free slots per free block, rounded to 4 decimals; 0.0 for none.

    :param total: The slots free on every link of the path.
    :param blocks: How many blocks they form.

        >>> mean_block_size(5, 2), mean_block_size(0, 0)
        (2.5, 0.0)
    """
    return round(total / blocks, 4) if blocks else 0.0


class _Memo(dict[int, float]):
    """``a * base + b`` -> ``figure(a, b)``, computed on first use (a, b below ``base``)."""

    def __init__(self, figure: Callable[[int, int], float], base: int) -> None:
        super().__init__()
        self._figure, self._base = figure, base

    def __missing__(self, key: int) -> float:
        value = self[key] = self._figure(*divmod(key, self._base))
        return value


#: The row of a candidate a pair lacks (fewer than K loop-free paths): the seed card's
#: features, then the extended ones; its mask entry is false.
PADDING: dict[str, Any] = {
    "path_hops": 0,
    "min_residual_slots": 0,
    "frag_indicator": 0.0,
    "failure_mask": 1,
    "dist_to_disaster_centroid": -1,
}
PADDING_EXTENDED: dict[str, Any] = PADDING | {
    "length_km": 0.0,
    "path_slots_needed": 0,
    "spectral_efficiency": 0.0,
    "first_fit_start": -1,
    "first_fit_block": 0,
    "fitting_blocks": 0,
    "free_slots": 0,
    "mean_block_size": 0.0,
}


class PathScan:
    """A run's path scans over the live spectrum.

    :param spectrum: The live spectrum (read, never changed).
    :param k: K: a state holds K paths, padded.
    :param extended: ``[dataset_logging] path_features = extended``.
    :param log_spectrum: ``[dataset_logging] log_spectrum``: the state holds every link's
        occupied slots (hex) and each path its ``links``.
    :param mean_holding: ``est_remaining_time``'s value, or ``None``: the request's own holding
        time (``holding_time_known``).
    :param rule: The spectrum rule :meth:`first_fitting` places with.
    """

    def __init__(
        self,
        spectrum: SpectrumState,
        *,
        k: int,
        extended: bool,
        log_spectrum: bool,
        mean_holding: float | None,
        rule: str = "first_fit",
    ) -> None:
        self.spectrum, self.k, self.extended = spectrum, k, extended
        self.rule, self._first_fit = rule, rule == "first_fit"
        self._hex_width = 2 * ((spectrum.slots + 7) // 8) if log_spectrum else 0
        self._hex_format = f"0{self._hex_width}x"  # a link's occupied slots, fixed width
        self._mean_holding = mean_holding
        self.padding = (PADDING_EXTENDED if extended else PADDING) | (
            {"links": []} if log_spectrum else {}
        )
        # the state's two rounded ratios, each computed once per pair of counts (a round()
        # costs a few dict lookups)
        base = spectrum.slots + 1
        self._fragmentation = _Memo(fragmentation, base)
        self._mean_block = _Memo(mean_block_size, base)

    def first_fitting(self, pair: Pair, needs: list[int]) -> tuple[int, int]:
        """The first candidate that can carry the request and where the rule puts it;
        ``(-1, -1)`` when none can.

        :param pair: The request's pair.
        :param needs: Per path, the slots the request takes (0: out of reach).
        """
        spectrum = self.spectrum
        free, full = spectrum.free, spectrum.full
        for action, (links, need, failed) in enumerate(
            zip(pair.links, needs, pair.failed, strict=True)
        ):
            if need and not failed:
                common = full
                for link in links:  # common_free, inlined
                    common &= free[link]
                if common.bit_count() >= need:
                    starts = runs_of(common, need)
                    if starts:  # path_feasible
                        if self._first_fit:
                            return action, (starts & -starts).bit_length() - 1  # lowest_slot
                        return action, place(self.rule, common, need, spectrum.usage)
        return -1, -1

    def fits(self, pair: Pair, needs: list[int], commons: list[int], mask: list[bool]) -> list[int]:
        """Fill the mask (padded to K) and each path's common free slots; return per path the
        starts where the request fits (0: it cannot), whose lowest is first-fit's.

        :param pair: The request's pair.
        :param needs: Per path, the slots the request takes (0: out of reach).
        :param commons: Filled: per path, the slots free on every link.
        :param mask: Filled: per path (K of them), whether it can carry the request.
        """
        free, full = self.spectrum.free, self.spectrum.full
        runs = []
        for links, need, failed in zip(pair.links, needs, pair.failed, strict=True):
            common = full
            for link in links:  # common_free, inlined
                common &= free[link]
            commons.append(common)
            # path_feasible asks whether a block of `need` slots is free: runs_of answers that
            # in fewer operations than the longest block's length, which only the state needs
            starts = (
                runs_of(common, need)
                if need > 0 and not failed and common.bit_count() >= need
                else 0
            )
            runs.append(starts)
            mask.append(starts != 0)
        mask.extend([False] * (self.k - len(mask)))
        return runs

    def state(
        self,
        request: Request,
        pair: Pair,
        needs: list[int],
        disaster: bool,
        commons: list[int],
        mask: list[bool] | None = None,
    ) -> dict[str, Any]:
        """The seed card's state of a request: the request's features and its K paths'.

        :param request: Its ``(arrival, holding, src, dst, bit_rate)``.
        :param pair: Its pair.
        :param needs: Per path, the slots it takes (0: out of reach).
        :param disaster: Whether a failure is active.
        :param commons: Per path, the slots free on every link; with ``mask``, an empty list
            that the scan fills.
        :param mask: ``None``: the commons are known; else an empty list that the scan fills
            with the mask (padded to K), in the same pass.
        """
        _, holding, src, dst, rate = request
        state: dict[str, Any] = {
            "src": src,
            "dst": dst,
            "slots_needed": pair.slots_needed[rate],
            "est_remaining_time": holding if self._mean_holding is None else self._mean_holding,
            "is_disaster": 1 if disaster else 0,
            "paths": self._paths(pair, needs, rate, disaster, commons, mask),
        }
        if self._hex_width:
            spectrum, digits = self.spectrum, self._hex_format
            state["spectrum"] = [format(spectrum.full ^ f, digits) for f in spectrum.free]
        return state

    def _paths(
        self,
        pair: Pair,
        needs: list[int],
        rate: int,
        disaster: bool,
        commons: list[int],
        mask: list[bool] | None,
    ) -> list[dict[str, Any]]:
        """The K path rows of a state (padded), in one pass; with ``mask``, it also fills the
        commons and the mask."""
        spectrum = self.spectrum
        free, count, full, slots = spectrum.free, spectrum.free_count, spectrum.full, spectrum.slots
        extended, links_too = self.extended, self._hex_width != 0
        efficiency = pair.efficiency[rate] if extended else []
        frags, means, base = self._fragmentation, self._mean_block, slots + 1
        rows: list[dict[str, Any]] = []
        for index, (links, hops, distance, need, failed) in enumerate(
            zip(pair.links, pair.hops, pair.distance, needs, pair.failed, strict=True)
        ):
            residual = slots
            if mask is None:
                common = commons[index]
                for link in links:
                    if count[link] < residual:
                        residual = count[link]
            else:
                common = full
                for link in links:  # common_free and the fewest free slots, in one pass
                    common &= free[link]
                    if count[link] < residual:
                        residual = count[link]
                commons.append(common)
            total = common.bit_count()
            longest = longest_run(common)
            if extended:  # one dict literal: faster than adding keys one by one
                starts = runs_of(common, need) if need and longest >= need else 0
                if starts:
                    start = (starts & -starts).bit_length() - 1  # lowest_slot, inlined
                    tail = common >> start  # block_at, inlined
                    block = (~tail & (tail + 1)).bit_length() - 1
                else:
                    start, block = -1, 0
                row: dict[str, Any] = {
                    "path_hops": hops,
                    "min_residual_slots": residual,
                    "frag_indicator": frags[longest * base + total],
                    "failure_mask": 1 if failed else 0,
                    "dist_to_disaster_centroid": distance if disaster else -1,
                    "length_km": pair.lengths[index],
                    "path_slots_needed": need,
                    "spectral_efficiency": efficiency[index],
                    "first_fit_start": start,
                    "first_fit_block": block,
                    "fitting_blocks": (starts & ~(starts << 1)).bit_count(),  # block_count
                    "free_slots": total,
                    "mean_block_size": means[total * base + (common & ~(common << 1)).bit_count()],
                }
            else:
                row = {
                    "path_hops": hops,
                    "min_residual_slots": residual,
                    "frag_indicator": frags[longest * base + total],
                    "failure_mask": 1 if failed else 0,
                    "dist_to_disaster_centroid": distance if disaster else -1,
                }
            if links_too:
                row["links"] = list(links)
            rows.append(row)
            if mask is not None:
                mask.append(need > 0 and not failed and longest >= need)  # path_feasible
        padding = self.padding
        for _ in range(len(rows), self.k):
            rows.append(padding)
            if mask is not None:
                mask.append(False)
        return rows
