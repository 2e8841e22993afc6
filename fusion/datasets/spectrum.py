"""The whole network's spectrum of each transition, for graph and attention learners.

Data logged with ``[dataset_logging] log_spectrum = true`` holds, in every state, each link's
occupied slots (``state.spectrum``: one hexadecimal number per link, bit ``s`` set when slot
``s`` is taken) and, in each path object, the path's link ids (``links``).
:func:`spectrum_arrays` reads just those fields (the array view,
:func:`~fusion.datasets.arrays.to_arrays`, never parses them) and gives them in the array
view's row order, ``(seed, t)`` within each dataset:

- ``occupancy``: ``(N, links, ceil(slots / 8))`` uint8, bit-packed little-endian (slot ``s``
  is bit ``s % 8`` of byte ``s // 8``, numpy's ``packbits(..., bitorder="little")``), or with
  ``packed=False`` ``(N, links, slots)`` bool;
- ``path_links``: ``(N, K, H)`` int32 link ids of each candidate path, -1 padded (H: the
  most hops).

This module is also the logged hex's one decoder: :func:`occupancy_bytes` for many states at once
(bytes), :func:`free_masks` and :func:`logged_spectrum` for one state, as the simulator holds
a spectrum (:mod:`fusion.sim.spectrum`: per link an int, bit ``s`` set when slot ``s`` is free).

    >>> import tempfile
    >>> from fusion.config.config import load_config
    >>> from fusion.run.simulation import run_simulation
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config().replace("general_settings", num_requests=50)
    >>> cfg = cfg.replace("dataset_logging", log_spectrum="true")
    >>> _ = run_simulation(cfg, 1, dataset_dir=d)
    >>> s = spectrum_arrays(d, packed=False)
    >>> s.occupancy.shape, s.path_links.shape[:2], bool(s.occupancy[0].any())
    ((50, 22, 320), (50, 4), False)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from fusion.datasets.arrow_types import only, record_schema
from fusion.datasets.columns import check_parsed, explain, read_table
from fusion.errors import DatasetError
from fusion.sim.spectrum import SpectrumState
from fusion.storage.sources import Source, resolve_parts

#: The fields read: each line's ``t`` and ``seed``, its state's spectrum and paths' links.
_SCHEMA = record_schema(
    only({"record": ("t", "seed", "state"), "state": ("spectrum", "paths"), "path": ("links",)})
)


def free_masks(spectrum: Sequence[str], slots: int) -> list[int]:
    """One state's logged ``spectrum`` as each link's free-slot bitmask (the simulator's form).

    :param spectrum: Per link, its occupied slots as a hexadecimal number.
    :param slots: Slots per link.

        >>> free_masks(["00", "f0"], 8)
        [255, 15]
    """
    full = (1 << slots) - 1
    return [full ^ int(text, 16) for text in spectrum]


def logged_spectrum(spectrum: Sequence[str], slots: int) -> SpectrumState:
    """One state's logged ``spectrum`` as a :class:`~fusion.sim.spectrum.SpectrumState` (to
    allocate on, or to read a path's common free slots from, as the simulator does).

    :param spectrum: Per link, its occupied slots as a hexadecimal number.
    :param slots: Slots per link.

        >>> s = logged_spectrum(["03", "01"], 8)
        >>> s.common_free([0, 1]), s.free_count
        (252, [6, 7])
    """
    state = SpectrumState(len(spectrum), slots)
    state.free = free_masks(spectrum, slots)
    state.free_count = [mask.bit_count() for mask in state.free]
    return state


def occupancy_bytes(spectrum: Sequence[str], rows: int, links: int) -> np.ndarray:
    """Many states' logged spectra as bytes: ``(rows, links, bytes)`` uint8, slot ``s`` the
    bit ``s % 8`` of byte ``s // 8`` (the hex number's low byte first).

    :param spectrum: Every row's links' hex numbers, row after row (all of one width).
    :param rows: The rows.
    :param links: Links per row.

        >>> occupancy_bytes(["0100", "8001"], 1, 2).tolist()  # (free_masks' bits, packed)
        [[[0, 1], [1, 128]]]
    """
    width = len(spectrum[0]) // 2 if len(spectrum) else 0
    raw = np.frombuffer(bytes.fromhex("".join(spectrum)), dtype=np.uint8)
    return np.ascontiguousarray(raw.reshape(rows, links, width)[:, :, ::-1])


@dataclass(frozen=True)
class SpectrumArrays:
    """Each transition's spectrum and candidate paths' links, in the array view's row order.

    :param occupancy: Packed ``(N, links, bytes)`` uint8 or ``(N, links, slots)`` bool.
    :param path_links: ``(N, K, H)`` int32, -1 padded.
    :param slots: Slots per link.
    :param seeds: ``(N,)`` the rows' seeds.
    :param t: ``(N,)`` the rows' ``t``.
    """

    occupancy: np.ndarray
    path_links: np.ndarray
    slots: int
    seeds: np.ndarray
    t: np.ndarray

    def __len__(self) -> int:
        return len(self.t)


def _read(source: Source) -> tuple[np.ndarray, np.ndarray, list[str], int, list[list[list[int]]]]:
    path = Path(source.path)
    try:
        table = read_table(
            path,
            _SCHEMA,
            whole_lines_only=source.whole_lines_only,
            byte_range=source.byte_range,
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise explain(path, source.whole_lines_only, exc, source) from exc
    state = table.column("state").combine_chunks()
    spectrum = state.field("spectrum")
    if spectrum.null_count:
        raise DatasetError(
            f"{path}: state.spectrum is missing (log the data with [dataset_logging] "
            "log_spectrum = true to read the network's spectrum)"
        )
    seeds, steps = table.column("seed").to_numpy(), table.column("t").to_numpy()
    check_parsed(source, seeds, steps)  # the same checks as the array view's
    counts = pa.compute.list_value_length(spectrum).to_numpy(zero_copy_only=False)
    links = int(counts[0]) if len(counts) else 0
    if len(counts) and (counts != links).any():
        raise DatasetError(f"{path}: state.spectrum lists different numbers of links per line")
    return (
        seeds,
        steps,
        spectrum.flatten().to_pylist(),
        links,
        [[p["links"] or [] for p in paths] for paths in state.field("paths").to_pylist()],
    )


def spectrum_arrays(
    path: str | os.PathLike[str],
    *,
    packed: bool = True,
    slots: int | None = None,
    include_incomplete: bool = False,
) -> SpectrumArrays:
    """Read the logged spectrum of a dataset, file or study (see the module docstring).

    :param path: What :func:`~fusion.datasets.arrays.to_arrays` reads.
    :param packed: Bit-packed uint8 (8 slots a byte) rather than one bool per slot.
    :param slots: Slots per link (default: the manifest's ``c_band``, else 8 per hex byte).
    :param include_incomplete: Also read shards not ``complete`` (their whole lines).
    :raises DatasetError: naming the file when it holds no spectrum.
    """
    seeds, ts, hexes, paths = [], [], [], []
    links = 0
    for part in resolve_parts(path, include_incomplete=include_incomplete):
        resolved = part.resolved
        if slots is None and resolved.manifest is not None:
            band = resolved.manifest.get("config", {}).get("topology_settings", {}).get("c_band")
            slots = int(band) if band else None
        rows: list[tuple[int, int, int]] = []
        part_hex: list[list[str]] = []
        part_paths: list[list[list[int]]] = []
        for source in resolved.sources:
            s, t, flat, links, file_paths = _read(source)
            for i in range(len(t)):
                rows.append((int(s[i]), int(t[i]), len(part_hex)))
                part_hex.append(flat[i * links : (i + 1) * links])
                part_paths.append(file_paths[i])
        rows.sort()
        for seed, step, at in rows:
            seeds.append(seed)
            ts.append(step)
            hexes.extend(part_hex[at])
            paths.append(part_paths[at])
    n = len(ts)
    little = occupancy_bytes(hexes, n, links)
    slots = slots or little.shape[2] * 8
    occupancy = (
        little[:, :, : (slots + 7) // 8]
        if packed
        else np.unpackbits(little, axis=-1, bitorder="little")[:, :, :slots].astype(bool)
    )
    k = max((len(p) for p in paths), default=0)
    hops = max((len(links_) for p in paths for links_ in p), default=0)
    path_links = np.full((n, k, hops), -1, dtype=np.int32)
    for row, candidates in enumerate(paths):
        for j, ids in enumerate(candidates):
            path_links[row, j, : len(ids)] = ids
    return SpectrumArrays(
        occupancy, path_links, slots, np.array(seeds, np.int64), np.array(ts, np.int64)
    )
