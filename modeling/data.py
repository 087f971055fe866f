"""Training and evaluation data: a VECS dataset (Hub repo id or a local export folder), checked before any model
is loaded, read lazily, and batched by length.

Memory does not grow with the dataset: a local export is read through ``datasets``' memory-mapped Arrow files,
and only the small columns (ids, texts, durations) are held; a sample's audio is fetched and decoded when a batch
needs it, in the DataLoader's worker processes. A Hub repo can also be streamed (``streaming=True``), sharded per
rank with ``datasets.distributed.split_dataset_by_node``. Problems with the data are found up front — missing
columns, an empty split — and fail with one line; a sample whose audio does not decode is skipped and counted,
never a crash in the middle of an epoch.
"""
from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import soundfile as sf
from torch.utils.data import IterableDataset

from dataset_builder.foundation.audio import MediaError, decode_audio_bytes
from dataset_builder.foundation.config import SAMPLE_RATE
from dataset_builder.foundation.text import clean_text, en_ratio

META = ("id", "transcript", "translation", "duration")


class DataError(ValueError):
    """A dataset that cannot be trained or evaluated on, with the reason in one line."""


@dataclass
class Sample:
    id: str
    transcript: str
    translation: str
    duration: float
    fetch: Callable[[], bytes | None] = field(repr=False, compare=False)  # the encoded audio, read when needed

    @property
    def language(self) -> str:
        """The Whisper language token for this segment: vi unless it is mostly English."""
        return "en" if en_ratio(self.transcript) > 0.5 else "vi"

    @property
    def audio(self) -> bytes | None:
        return self.fetch()

    def samples(self):
        return decode_audio_bytes(self.audio, name=self.id)


def _audio_bytes(value: dict | None) -> bytes | None:
    value = value or {}
    data = value.get("bytes")
    if not data and value.get("path"):
        try:
            data = Path(value["path"]).read_bytes()
        except OSError:
            data = None
    return data


class Samples(Sequence):
    """The usable rows of a split as :class:`Sample` objects, made on access (nothing is held but the texts)."""

    def __init__(self, table, rows: list[int], meta: dict[str, list]) -> None:
        self.table, self.rows, self.meta = table, rows, meta

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        m, row = self.meta, self.rows[i]
        table = self.table
        return Sample(m["id"][i], m["transcript"][i], m["translation"][i], m["duration"][i],
                      lambda: _audio_bytes(table[row]["audio"]) if table is not None else None)

    def take(self, indices: Sequence[int]) -> "Samples":
        idx = list(indices)
        return Samples(self.table, [self.rows[i] for i in idx], {k: [v[i] for i in idx] for k, v in self.meta.items()})


@dataclass
class SplitData:
    name: str
    samples: Samples
    skipped: Counter = field(default_factory=Counter)

    @property
    def hours(self) -> float:
        return sum(self.samples.meta["duration"]) / 3600

    @property
    def durations(self) -> list[float]:
        return self.samples.meta["duration"]

    def shard(self, index: int, count: int) -> "SplitData":
        """Every ``count``-th sample from ``index``: one rank's share of an evaluation."""
        return SplitData(self.name, self.samples.take(range(index, len(self.samples), count)), self.skipped)


def _load(dataset: str, config: str, split: str, streaming: bool = False):
    import datasets

    where = f"{dataset} [{config}/{split}]"
    try:
        if Path(dataset).exists():
            return datasets.load_dataset("parquet", data_files={split: local_files(Path(dataset), config, split)},
                                         split=split, streaming=streaming)
        return datasets.load_dataset(dataset, config, split=split, streaming=streaming)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise DataError(f"{where}: cannot be loaded: {str(msg).splitlines()[0][:200]}") from None
    except Exception as exc:  # the Hub unreachable, no such repo or config
        raise DataError(f"{where}: cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def _check_columns(ds, where: str, need: Sequence[str]) -> None:
    columns = list(ds.column_names or [])
    missing = [c for c in ("audio", *need) if c not in columns]
    if missing:
        raise DataError(f"{where}: missing columns {', '.join(missing)} (has {', '.join(columns)})")


def _header_duration(data: bytes | None, name: str) -> float:
    if not data:
        raise MediaError(f"{name}: no audio")
    try:
        info = sf.info(io.BytesIO(data))
        if info.frames <= 0:
            raise MediaError(f"{name}: empty audio")
        return info.frames / info.samplerate
    except MediaError:
        raise
    except Exception:
        return len(decode_audio_bytes(data, name=name)) / SAMPLE_RATE


def load_split(dataset: str, config: str, split: str, *, need: Sequence[str] = ("transcript",),
               max_seconds: float | None = None, limit: int | None = None) -> SplitData:
    """The usable rows of ``dataset`` [``config``/``split``], read lazily: empty transcripts and segments longer
    than ``max_seconds`` are skipped and counted (from the small columns alone), audio is read when used."""
    import datasets

    where = f"{dataset} [{config}/{split}]"
    ds = _load(dataset, config, split)
    _check_columns(ds, where, need)
    if len(ds) == 0:
        raise DataError(f"{where}: the split is empty")
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    small = ds.select_columns([c for c in META if c in ds.column_names]).to_dict()
    n = len(ds)
    ids = [str(x) for x in small.get("id") or range(n)]
    durations = small.get("duration")
    out_rows, meta, skipped = [], {k: [] for k in META}, Counter()
    for i in range(n):
        if limit is not None and len(out_rows) >= limit:
            break
        text = clean_text(small["transcript"][i])
        if not text:
            skipped["empty_transcript"] += 1
            continue
        if durations is not None and durations[i]:
            duration = float(durations[i])
        else:  # no duration column: read the audio header once (not kept)
            try:
                duration = _header_duration(_audio_bytes(ds[i]["audio"]), ids[i])
            except MediaError:
                skipped["undecodable_audio"] += 1
                continue
        if max_seconds is not None and duration > max_seconds:
            skipped["longer_than_input"] += 1
            continue
        out_rows.append(i)
        for key, value in (("id", ids[i]), ("transcript", text),
                           ("translation", clean_text((small.get("translation") or [""] * n)[i] or "")),
                           ("duration", duration)):
            meta[key].append(value)
    if not out_rows:
        reasons = ", ".join(f"{k} {v}" for k, v in skipped.items())
        raise DataError(f"{where}: no usable samples ({reasons})")
    return SplitData(split, Samples(ds, out_rows, meta), skipped)


def load_stream(dataset: str, config: str, split: str, *, need: Sequence[str] = ("transcript",),
                max_seconds: float | None = None, rank: int = 0, world_size: int = 1, seed: int = 0,
                buffer: int = 1000, open_shards: int = 2):
    """``dataset`` streamed (a Hub repo larger than the disk, or a local export read as a stream): this rank's
    shard, shuffled in a buffer. Yields :class:`Sample` objects holding their own audio bytes.

    Memory is bounded by the buffer and the ``open_shards`` Parquet files read at once, not by the dataset's
    size — but ``datasets`` 5 opens 10 by default, and each holds a row group of audio (~100 MB measured on
    our exports): the default here keeps a 10×-larger dataset within the memory of a small one."""
    import datasets
    from datasets.distributed import split_dataset_by_node

    where = f"{dataset} [{config}/{split}]"
    ds = _load(dataset, config, split, streaming=True)
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    _check_columns(ds, where, need)
    ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
    import inspect

    extra = {"max_buffer_input_shards": open_shards} if "max_buffer_input_shards" in inspect.signature(
        ds.shuffle).parameters else {}  # datasets 4 reads one shard at a time anyway
    return StreamSamples(ds.shuffle(seed=seed, buffer_size=buffer, **extra), max_seconds)


class StreamSamples:
    """A streamed shard as :class:`Sample` objects; ``set_epoch`` reshuffles, as ``datasets`` does."""

    def __init__(self, ds, max_seconds: float | None) -> None:
        self.ds, self.max_seconds = ds, max_seconds
        self.skipped: Counter = Counter()

    def set_epoch(self, epoch: int) -> None:
        self.ds.set_epoch(epoch)

    def __iter__(self) -> Iterator[Sample]:
        for i, row in enumerate(self.ds):
            text = clean_text(row.get("transcript"))
            data = _audio_bytes(row.get("audio"))
            if not text:
                self.skipped["empty_transcript"] += 1
                continue
            rid = str(row.get("id") or i)
            try:
                duration = float(row["duration"]) if row.get("duration") else _header_duration(data, rid)
            except MediaError:
                self.skipped["undecodable_audio"] += 1
                continue
            if self.max_seconds is not None and duration > self.max_seconds:
                self.skipped["longer_than_input"] += 1
                continue
            yield Sample(rid, text, clean_text(row.get("translation") or ""), duration, lambda d=data: d)


def local_files(folder: Path, config: str, split: str) -> list[str]:
    """The Parquet files of ``config``/``split`` in a local export folder, from its card's YAML ``configs``.

    Loaded by file rather than as a folder: ``datasets`` caches a local folder under its base name and the
    card's patterns, so two exports in folders of the same name — or a re-export into the same folder —
    would silently return the first one's rows; the ``parquet`` builder keys its cache by path and mtime.
    """
    import yaml

    card = folder / "README.md"
    if not card.exists():
        raise FileNotFoundError(f"{folder}: no README.md with YAML configs (is it a `vecs export` folder?)")
    text = card.read_text(encoding="utf-8")
    meta = yaml.safe_load(text.split("---")[1]) if text.startswith("---") else {}
    configs = {c["config_name"]: c for c in (meta or {}).get("configs", [])}
    if config not in configs:
        raise KeyError(f"no config {config!r} (has {', '.join(configs) or 'none'})")
    patterns = [d["path"] for d in configs[config]["data_files"] if d["split"] == split]
    if not patterns:
        raise KeyError(f"config {config!r} has no split {split!r}")
    files = sorted(str(p) for pattern in patterns for p in folder.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no files match {patterns}")
    return files


def length_grouped_batches(lengths: Sequence[float], batch_size: int, *, seed: int,
                           mega: int = 50) -> Iterator[list[int]]:
    """Shuffled batches of similar length (less padding): shuffle, cut into mega-batches of ``mega`` batches,
    sort each by length, batch it, shuffle the batch order. A new ``seed`` per epoch gives a new order."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    step = batch_size * mega
    for m in range(0, len(order), step):
        group = sorted(order[m:m + step], key=lambda i: -lengths[i])
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    yield from batches


def epoch_batches(lengths: Sequence[float], per_device: int, num_processes: int, *, seed: int) -> list[list[int]]:
    """One epoch's global batches (``per_device`` × ``num_processes`` samples of similar length): the same for any
    number of processes at the same global size, so a run on N ranks sees what one process would. A last batch
    too small to give every rank a sample is dropped."""
    return [b for b in length_grouped_batches(lengths, per_device * num_processes, seed=seed)
            if len(b) >= num_processes]


class RankBatches:
    """A batch sampler: this rank's share (``batch[rank::num_processes]``) of each global batch, from batch
    ``start`` on (a resumed epoch starts where the checkpoint stopped)."""

    def __init__(self, batches: list[list[int]], rank: int, num_processes: int, start: int = 0) -> None:
        self.batches, self.rank, self.n, self.start = batches, rank, num_processes, start

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches[self.start:]:
            yield b[self.rank::self.n]

    def __len__(self) -> int:
        return max(0, len(self.batches) - self.start)


class Decoded:
    """Map-style training examples for a DataLoader: ``(sample, inputs)`` decoded in the worker that reads it.
    A sample that cannot be decoded is replaced by the next decodable one and counted, so every rank's batch
    keeps its size (under DDP a rank with an empty batch would stall the others)."""

    def __init__(self, samples: Samples, inputs: Callable) -> None:
        self.samples, self.inputs = samples, inputs

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        for k in range(min(len(self.samples), 16)):
            s = self.samples[(i + k) % len(self.samples)]
            try:
                return s, self.inputs(s), k
            except Exception:
                continue
        raise DataError(f"sample {self.samples[i].id}: it and the next 15 cannot be decoded")


class StreamBatches(IterableDataset):
    """Length-grouped batches from a stream: ``mega`` batches' worth of samples are buffered, sorted by duration,
    cut into batches and shuffled, each decoded where it is read (a DataLoader worker; ``datasets`` gives each
    worker its own shards of the stream). ``skip`` batches are passed over first (a resumed epoch)."""

    def __init__(self, stream: "StreamSamples", per_device: int, inputs: Callable, *, skip: int = 0,
                 mega: int = 50, seed: int = 0) -> None:
        self.stream, self.per_device, self.inputs, self.skip, self.mega = stream, per_device, inputs, skip, mega
        self.rng = random.Random(seed)

    def _batches(self) -> Iterator[list[Sample]]:
        buffer: list[Sample] = []
        for sample in self.stream:
            buffer.append(sample)
            if len(buffer) >= self.per_device * self.mega:
                yield from self._cut(buffer)
                buffer = []
        yield from self._cut(buffer)

    def _cut(self, buffer: list[Sample]) -> list[list[Sample]]:
        buffer.sort(key=lambda s: -s.duration)
        batches = [buffer[i:i + self.per_device] for i in range(0, len(buffer), self.per_device)]
        self.rng.shuffle(batches)
        return batches

    def __iter__(self):
        for i, batch in enumerate(self._batches()):
            if i < self.skip:
                continue
            items = []
            for s in batch:
                try:
                    items.append((s, self.inputs(s), 0))
                except Exception:
                    self.stream.skipped["undecodable_audio"] += 1
            if items:
                yield items


def collate_with(collate: Callable) -> Callable:
    """The task's collate over decoded examples; how many were replaced travels with the batch."""
    def fn(items: list) -> dict:
        batch = collate([(s, x) for s, x, _ in items])
        batch["_skipped"] = sum(1 for *_, k in items if k)
        return batch
    return fn


IGNORE = -100  # label positions the loss skips


def teacher_forcing(seqs: list[list[int]], pad_id: int, given: int = 0):
    """Decoder inputs (each sequence but its last token), labels (all but its first; padding and the first
    ``given`` label positions — a prompt the model is handed, not asked for — set to IGNORE) and the mask."""
    import torch

    width = max(len(s) for s in seqs) - 1
    dec = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, s in enumerate(seqs):
        dec[i, : len(s) - 1] = torch.tensor(s[:-1])
        mask[i, : len(s) - 1] = 1
        labels[i, : len(s) - 1] = torch.tensor(s[1:])
        labels[i, :given] = IGNORE
    return dec, labels, mask
