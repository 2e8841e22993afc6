"""A shard's life in a dataset directory, around the line writer that fills it.

Before the first line (:func:`open_shard_context`): the directory is no study and no other
run's, the shard's lock is taken (a second writer of the seed is refused), the manifest is
created or checked and lists the shard ``writing``, a complete shard is refused unless
overwritten, and what an earlier run left of it (a link, a sidecar, compressed files) goes.
After the last (:meth:`ShardContext.publish`): the shard is compressed if asked, its record
goes to its sidecar and to the manifest, and the lock is released. The lines themselves are
:class:`~fusion.storage.shard_writer.DatasetLogger`'s.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> shard = open_shard_context(d, 3, {"erlang": 300})
    >>> shard.path.name, shard.props["seed"], shard.entry["status"]
    ('offline_data.seed3.jsonl', 3, 'writing')
    >>> shard.lock.release()
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from fusion.config.config import check_seed
from fusion.errors import (
    DatasetError,
    ManifestConflictError,
    ShardBusyError,
    ShardExistsError,
    ShardWriteError,
)
from fusion.storage import manifest as mf
from fusion.storage.clearing import refuse_foreign_shards
from fusion.storage.compression import SUFFIXES, check_compression, compress_file
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.ownership import Lease, refuse_if_held
from fusion.storage.shard_entries import (
    host_and_pid,
    now_iso,
    publish_sidecar,
    read_sidecar,
    sidecar_record,
)
from fusion.storage.shard_names import DEFAULT_STEM, shard_file_name, sidecar_path
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_FAILED, STATUS_WRITING
from fusion.storage.study_layout import is_study

logger = logging.getLogger(__name__)


class WrittenShard(Protocol):
    """What a closed line writer tells of its file (the shard writer's ``DatasetLogger``)."""

    output_path: Path
    lines_written: int

    @property
    def bytes_written(self) -> int: ...

    @property
    def sha256(self) -> str: ...

    def stats(self) -> dict[str, Any]: ...

    @property
    def path_features(self) -> tuple[str, ...] | None: ...


class ShardContext:
    """What a shard writer needs beyond its file: directory, lock, dataset identity, entry.

    :param path: The shard's file.
    :param props: The engine properties its writer carries (``seed`` among them).
    :param lock: The shard's lock, held.
    :param manifest: The dataset's manifest (or what of it the writer needs).
    :param entry: The shard's entry as listed while it is written.
    :param compress: ``"gzip"``, ``"zstd"`` or ``None``.
    :param commit: Publish the entry to the manifest too.
    :param owner: The lease of the run writing the directory, checked before publishing.
    """

    def __init__(
        self,
        path: Path,
        props: Mapping[str, Any],
        lock: FileLock,
        manifest: Mapping[str, Any],
        entry: dict[str, Any],
        compress: str | None,
        commit: bool,
        owner: Lease | None,
    ) -> None:
        self.path = path
        self.directory = path.parent
        self.props = props
        self.owner = owner
        self.lock = lock
        self.compress = compress
        self.commit = commit
        self.record: dict[str, Any] | None = None
        self.identity = {k: manifest[k] for k in ("config", "config_sha256", "stem")}
        self.identity.update(format=mf.FORMAT_NAME, schema_version=mf.SCHEMA_VERSION)
        self.identity[mf.PATH_FEATURES_FIELD] = manifest.get(mf.PATH_FEATURES_FIELD)
        self.identity[mf.RECORD_EDITION_FIELD] = manifest.get(mf.RECORD_EDITION_FIELD)
        self.entry = entry

    def publish(self, log: WrittenShard, error: BaseException | None) -> None:
        """Publish the closed shard's sidecar, then its manifest entry; release the lock.

        :param log: The closed writer of the shard.
        :param error: What ended the writing (the shard is then ``failed``), or ``None``.
        :raises RunConflictError: when the run lost its directory: nothing is published.
        :raises ShardWriteError: when the record cannot be published (the shard complete).
        """
        try:
            if self.owner is not None:
                self.owner.check()  # another run's directory now: publish nothing there
            entry = self._final_entry(log, error)
            published = log.output_path
            if error is None and self.compress is not None:
                published = self._compressed(log, entry)
            self.record = entry
            publish_sidecar(published, sidecar_record(self.identity, entry))
            if self.commit:
                mf.put_shard_entry(self.directory, entry)
            if published != log.output_path:
                log.output_path.unlink()
        except OSError as exc:
            if error is None:
                raise ShardWriteError(
                    f"{log.output_path}: publishing the shard's record failed ({exc})"
                ) from exc
            logger.error("%s: could not record the failure (%s): %s", log.output_path, exc, error)
        finally:
            self.lock.release()
            if self.record is not None and self.record["status"] == STATUS_COMPLETE:
                # a complete shard leaves no lock file (10,000 seeds would leave 10,000): a
                # writer racing for it meanwhile is what the lock never guaranteed against
                with contextlib.suppress(OSError):
                    Path(self.lock.lock_file).unlink()

    def _final_entry(self, log: WrittenShard, error: BaseException | None) -> dict[str, Any]:
        """The shard's entry once its writer closed: status, size, sha256, statistics."""
        entry = dict(self.entry)
        entry.update(
            status=STATUS_FAILED if error is not None else STATUS_COMPLETE,
            transitions=log.lines_written,
            bytes=log.bytes_written,
            sha256=log.sha256,
            finished=now_iso(),
            stats=log.stats(),
        )
        if error is not None:
            entry["error"] = f"{type(error).__name__}: {error}"
        if self.identity[mf.PATH_FEATURES_FIELD] is None:  # a hand-fed writer's
            held = log.path_features
            if held is not None:
                entry[mf.PATH_FEATURES_FIELD] = list(held)
        return entry

    def _compressed(self, log: WrittenShard, entry: dict[str, Any]) -> Path:
        """Compress the complete shard beside itself; on failure keep the plain one (and say so)."""
        assert self.compress is not None
        target = log.output_path.with_name(log.output_path.name + SUFFIXES[self.compress])
        try:
            sha, size = compress_file(log.output_path, target, self.compress)
        except (OSError, DatasetError) as exc:
            logger.warning("%s: kept uncompressed: %s", log.output_path, exc)
            entry["compression_error"] = f"{type(exc).__name__}: {exc}"
            return log.output_path
        entry.update(
            file=target.name,
            compression=self.compress,
            raw_bytes=entry["bytes"],
            raw_sha256=entry["sha256"],
            bytes=size,
            sha256=sha,
        )
        return target


def refuse_existing(
    listed: Sequence[Mapping[str, Any]], seed: int, shard_path: Path, overwrite: bool
) -> None:
    """Refuse to write a shard again that its sidecar or the manifest records complete.

    :param listed: The manifest's entries of this seed.
    :param seed: The seed.
    :param shard_path: The shard's file.
    :param overwrite: Write it again all the same.
    :raises ShardExistsError: naming the shard and how to write it again.
    """
    if overwrite:
        return
    sidecar = read_sidecar(sidecar_path(shard_path))
    complete = (sidecar is not None and sidecar.get("status") == STATUS_COMPLETE) or any(
        e.get("status") == STATUS_COMPLETE for e in listed
    )
    if complete:
        raise ShardExistsError(
            f"{shard_path}: the shard of seed {seed} is already complete; "
            "pass overwrite=True (or --overwrite / --resume) to write it again"
        )


def _refuse_directory(
    directory: Path, stem: str, seed: int, commit: bool, owner: Lease | None
) -> None:
    """Refuse a study, another run's directory, or one holding another stem's shards."""
    if is_study(directory):
        raise ManifestConflictError(
            f"{directory} is a study (it holds study.json): readers would never see a "
            "shard written there; write into a point's directory or another directory"
        )
    if owner is not None:  # (before anything is created: a lost directory stays lost)
        owner.check()
    else:
        refuse_if_held(directory, "a shard writer")
    if commit:  # (a sweep's driver made this check for its workers, once per directory)
        refuse_foreign_shards(directory, stem, [seed])


def _lock(shard_path: Path, seed: int) -> FileLock:
    """The shard's lock, taken (refused at once when another writer holds it)."""
    lock = FileLock(str(shard_path) + ".lock", timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise ShardBusyError(
            f"{shard_path}: another writer holds the shard of seed {seed}"
        ) from exc
    return lock


def _clear_leftovers(shard_path: Path) -> None:
    """Remove what an earlier writer of the shard left: a link in its place (never the
    link's target), its sidecar, its compressed files."""
    if shard_path.is_symlink():
        shard_path.unlink()
    sidecar_path(shard_path).unlink(missing_ok=True)  # shared by .gz / .zst
    for suffix in SUFFIXES.values():
        shard_path.with_name(shard_path.name + suffix).unlink(missing_ok=True)


def _listing(
    directory: Path,
    config: dict[str, Any],
    seed: int,
    stem: str,
    commit: bool,
    path_features: Sequence[str] | None,
    record_edition: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest (created or checked with ``commit``) and its entries of ``seed``."""
    if commit:
        manifest = mf.init_manifest(
            directory,
            config,
            planned_seeds=[seed],
            stem=stem,
            path_features=path_features,
            record_edition=record_edition,
        )
        return manifest, [e for e in manifest["shards"] if e["seed"] == seed]
    # the driver made and checked the manifest; reading it would cost per shard
    manifest = {"config": config, "config_sha256": config_sha256(config), "stem": stem}
    manifest[mf.PATH_FEATURES_FIELD] = path_features
    manifest[mf.RECORD_EDITION_FIELD] = record_edition
    return manifest, []


def open_shard_context(
    dataset_dir: str | os.PathLike[str],
    seed: int,
    engine_props: Mapping[str, Any],
    *,
    stem: str = DEFAULT_STEM,
    overwrite: bool = False,
    compress: str | None = None,
    commit: bool = True,
    owner: Lease | None = None,
    path_features: Sequence[str] | None = None,
    record_edition: str | None = None,
) -> ShardContext:
    """Prepare the shard ``dataset_dir/<stem>.seed<seed>.jsonl`` for its writer, its lock held
    (see :meth:`fusion.storage.shard_writer.DatasetLogger.open_shard`, which calls this, for
    the parameters and what each refusal means).

    :param dataset_dir: The dataset directory.
    :param seed: The simulation seed.
    :param engine_props: The resolved config (plain JSON values).
    :param stem: Shard file stem.
    :param overwrite: Rewrite a shard that is already complete.
    :param compress: ``"gzip"``, ``"zstd"`` or ``None``.
    :param commit: Create or check the manifest and list the shard there.
    :param owner: The lease of the run writing the directory, or ``None``.
    :param path_features: The path features every transition's paths hold, or ``None``.
    :param record_edition: The record edition the engine writes, or ``None`` (hand-fed).
    :return: The context; the caller releases its lock if it cannot build the writer.
    :raises ShardBusyError: when another writer holds this seed's shard.
    :raises ShardExistsError: when the shard is complete and ``overwrite`` is false.
    :raises ManifestConflictError: when the directory holds another config's dataset (or,
        given ``record_edition``, another edition's) or is a study.
    """
    seed = check_seed(seed)
    check_compression(compress)
    directory = Path(dataset_dir)
    _refuse_directory(directory, stem, seed, commit, owner)
    if commit and record_edition is not None:  # (before the shard's lock file is made)
        mf.refuse_other_edition(directory, record_edition)
    directory.mkdir(parents=True, exist_ok=True)
    shard_path = directory / shard_file_name(seed, stem)
    lock = _lock(shard_path, seed)
    try:
        config = {k: v for k, v in engine_props.items() if k != "seed"}
        manifest, listed = _listing(
            directory, config, seed, stem, commit, path_features, record_edition
        )
        refuse_existing(listed, seed, shard_path, overwrite)
        _clear_leftovers(shard_path)
        entry = {
            "seed": seed,
            "file": shard_path.name,
            "status": STATUS_WRITING,
            "started": now_iso(),
            **host_and_pid(),
        }
        if commit:
            mf.put_shard_entry(directory, entry)
    except BaseException:
        lock.release()
        raise
    props = {**engine_props, "seed": seed}
    return ShardContext(shard_path, props, lock, manifest, entry, compress, commit, owner)
