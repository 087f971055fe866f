"""Training and evaluation data: a VECS dataset (Hub repo id or a local export folder), checked before any
model is loaded, its audio decoded by the one audio loader, and batches grouped by length.

Problems with the data are found up front — missing columns, an empty split — and fail with one line;
a sample whose audio does not decode is skipped and counted, never a crash in the middle of an epoch.
"""
from __future__ import annotations

import io
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import soundfile as sf

from dataset_builder.foundation.audio import MediaError, decode_audio_bytes
from dataset_builder.foundation.config import SAMPLE_RATE

from dataset_builder.foundation.text import clean_text, en_ratio


class DataError(ValueError):
    """A dataset that cannot be trained or evaluated on, with the reason in one line."""


@dataclass
class Sample:
    id: str
    audio: bytes
    transcript: str
    translation: str
    duration: float

    @property
    def language(self) -> str:
        """The Whisper language token for this segment: vi unless it is mostly English."""
        return "en" if en_ratio(self.transcript) > 0.5 else "vi"

    def samples(self):
        return decode_audio_bytes(self.audio, name=self.id)


@dataclass
class SplitData:
    name: str
    samples: list[Sample]
    skipped: Counter = field(default_factory=Counter)

    @property
    def hours(self) -> float:
        return sum(s.duration for s in self.samples) / 3600


def load_split(dataset: str, config: str, split: str, *, need: Sequence[str] = ("transcript",),
               max_seconds: float | None = None, limit: int | None = None) -> SplitData:
    """Rows of ``dataset`` [``config``/``split``] with undecodable or unusable samples skipped and counted."""
    import datasets

    where = f"{dataset} [{config}/{split}]"
    try:
        if Path(dataset).exists():
            ds = datasets.load_dataset("parquet", data_files={split: local_files(Path(dataset), config, split)},
                                       split=split)
        else:
            ds = datasets.load_dataset(dataset, config, split=split)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise DataError(f"{where}: cannot be loaded: {str(msg).splitlines()[0][:200]}") from None
    except Exception as exc:  # the Hub unreachable, no such repo or config
        raise DataError(f"{where}: cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    missing = [c for c in ("audio", *need) if c not in ds.column_names]
    if missing:
        raise DataError(f"{where}: missing columns {', '.join(missing)} (has {', '.join(ds.column_names)})")
    if len(ds) == 0:
        raise DataError(f"{where}: the split is empty")
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    out = SplitData(split, [])
    for i, row in enumerate(ds):
        if limit is not None and len(out.samples) >= limit:
            break
        rid = str(row.get("id") or i)
        text = clean_text(row["transcript"])
        data = (row["audio"] or {}).get("bytes")
        if not data and (row["audio"] or {}).get("path"):
            try:
                data = Path(row["audio"]["path"]).read_bytes()
            except OSError:
                data = None
        if not text:
            out.skipped["empty_transcript"] += 1
            continue
        try:
            duration = _duration(data, rid)
        except MediaError:
            out.skipped["undecodable_audio"] += 1
            continue
        if max_seconds is not None and duration > max_seconds:
            out.skipped["longer_than_input"] += 1
            continue
        out.samples.append(Sample(rid, data, text, clean_text(row.get("translation") or ""), duration))
    if not out.samples:
        reasons = ", ".join(f"{k} {v}" for k, v in out.skipped.items())
        raise DataError(f"{where}: no usable samples ({reasons})")
    return out


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


def _duration(data: bytes | None, name: str) -> float:
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
