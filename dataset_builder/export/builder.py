"""The dataset as a ``datasets`` builder, and its output as a Hub dataset repo of Parquet shards.

``datasets`` >= 4 no longer runs loading scripts from the Hub, so the builder is instantiated here, prepared,
and its splits written as Parquet with the audio bytes embedded; the README's YAML ``configs`` tell
``load_dataset(folder)`` where each config's splits are.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
from pathlib import Path
from typing import Iterator

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf
from tqdm.auto import tqdm

from ..foundation.atomic import temp_prefix
from ..foundation.audio import MediaError
from ..foundation.config import SAMPLE_RATE
from .plan import CONFIGS, Example, Plan
from .report import write_figures
from .splits import SPLITS

class _FlacAudio(datasets.Audio):
    """``datasets.Audio`` whose examples arrive already encoded as FLAC bytes: stored as they are.

    The stock encoder imports torch and torchcodec for every example it sees (seconds per process) even
    when it only passes bytes through; the schema written is the plain ``Audio`` one, so readers decode as usual.
    """

    def encode_example(self, value):
        if isinstance(value, dict) and value.get("bytes") is not None:
            return {"bytes": value["bytes"], "path": value.get("path")}
        return super().encode_example(value)


FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "audio": _FlacAudio(sampling_rate=SAMPLE_RATE),
    "transcript": datasets.Value("string"),
    "translation": datasets.Value("string"),
    "video_id": datasets.Value("string"),
    "channel": datasets.Value("string"),
    "start": datasets.Value("float64"),
    "end": datasets.Value("float64"),
    "duration": datasets.Value("float64"),
    "source_url": datasets.Value("string"),
    "prelabel_transcript": datasets.Value("string"),
    "prelabel_translation": datasets.Value("string"),
    "verified": datasets.Value("bool"),
    "cmi": datasets.Value("float64"),
    "en_ratio": datasets.Value("float64"),
    # provenance per recording, as its source reported it (yt-dlp's title, license, uploader, date, channel)
    "title": datasets.Value("string"),
    "license": datasets.Value("string"),
    "uploader": datasets.Value("string"),
    "upload_date": datasets.Value("string"),
    "channel_id": datasets.Value("string"),
    "channel_url": datasets.Value("string"),
})


def generate_rows(examples: list[Example]) -> Iterator[tuple[str, dict]]:
    """``(id, row)`` with the segment's FLAC bytes, cut from the video's full-length audio by absolute time
    (no 305 s file edge); each video file is opened once, not once per segment."""
    handles: dict[Path, sf.SoundFile] = {}
    try:
        for ex in examples:
            fh = handles.get(ex.audio_path)
            if fh is None:
                fh = handles[ex.audio_path] = sf.SoundFile(str(ex.audio_path))
            if fh.samplerate != SAMPLE_RATE:
                raise MediaError(f"{ex.audio_path}: {fh.samplerate} Hz, expected the ingested {SAMPLE_RATE} Hz")
            first = int(round(ex.start * SAMPLE_RATE))
            fh.seek(first)
            samples = fh.read(max(0, int(round(ex.end * SAMPLE_RATE)) - first), dtype="int16")
            buf = io.BytesIO()
            sf.write(buf, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=0.0)
            yield ex.id, {**ex.row(), "audio": {"bytes": buf.getvalue(), "path": f"{ex.id}.flac"}}
    finally:
        for fh in handles.values():
            fh.close()


class VecsDataset(datasets.GeneratorBasedBuilder):
    """Vietnamese–English code-switched speech: ``verified`` (human-verified) and ``prelabeled`` configs.

    ``download_and_prepare()`` / ``as_dataset()`` give the Arrow dataset; :func:`write_parquet` publishes the
    same rows (same generator, same features) as Hub-ready Parquet shards, in parallel.
    """

    BUILDER_CONFIGS = [
        datasets.BuilderConfig(name="verified", description="Segments verified by annotators in Argilla."),
        datasets.BuilderConfig(name="prelabeled", description="Every segment with its machine pre-label."),
    ]
    DEFAULT_CONFIG_NAME = "verified"

    def __init__(self, *args, plan: Plan, **kwargs) -> None:
        self.plan = plan
        super().__init__(*args, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Vietnamese–English code-switched speech with verbatim transcripts and Vietnamese translations.",
            features=FEATURES,
        )

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split}) for split in SPLITS
                if self.plan.examples[self.config.name][split]]

    def _generate_examples(self, split: str):
        yield from generate_rows(self.plan.examples[self.config.name][split])


def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def _slices(examples: list[Example], parts: int) -> list[tuple[int, int]]:
    """Contiguous slices of about equal audio duration (the cost of a shard is its audio)."""
    total = sum(e.duration for e in examples) or 1.0
    bounds, acc = [0], 0.0
    for i, e in enumerate(examples):
        acc += e.duration
        if len(bounds) < parts and acc >= total * len(bounds) / parts:
            bounds.append(i + 1)
    if bounds[-1] != len(examples):
        bounds.append(len(examples))
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


_PLAN: Plan | None = None  # set before the worker pool forks; each worker reads its slice from it


def _write_shard(task: tuple[str, str, int, int, str]) -> tuple[str, int]:
    config, split, a, b, path = task
    examples = _PLAN.examples[config][split][a:b]
    schema = FEATURES.arrow_schema
    # FLAC bytes do not compress further: spend no CPU on them; the text columns get zstd.
    compression = {name: "zstd" for name in schema.names if name != "audio"} | {"audio.bytes": "none",
                                                                                 "audio.path": "zstd"}
    with pq.ParquetWriter(path, schema, compression=compression, use_dictionary=False) as writer:
        batch: list[dict] = []
        for _, row in generate_rows(examples):
            batch.append(FEATURES.encode_example(row))
            if len(batch) == ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return path, b - a


ROWS_PER_GROUP = 100  # ~1 MB of audio per row group: readers stream, writers hold one group


def _draw_figures(task: tuple[str, str]) -> dict[str, str]:
    out_dir, config = task
    return write_figures(Path(out_dir), _PLAN, config)


def write_parquet(plan: Plan, out_dir: Path, configs: tuple[str, ...] = CONFIGS, num_proc: int | None = None,
                  progress: bool = True, figures: bool = False):
    """Write ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` with ``num_proc`` workers (one per CPU by
    default); returns each split's path pattern for the card's ``configs`` (and, with ``figures``, the card's
    histograms, drawn by the same workers while they are free).

    Rows stream from :func:`generate_rows` into row groups, so memory does not grow with the corpus. Shards
    are written under temporary names and renamed into place once all are done, and shards of an earlier
    export that this one no longer has are removed: the folder is never half old, half new.
    """
    global _PLAN
    out_dir = Path(out_dir)
    num_proc = max(1, num_proc or min(4, os.cpu_count() or 1))
    tasks, final, written = [], {}, {}
    for config in configs:
        for split in SPLITS:
            exs = plan.examples[config][split]
            if not exs:
                continue
            written.setdefault(config, {})[split] = f"data/{config}/{split}-*.parquet"
            slices = _slices(exs, num_proc)
            for i, (a, b) in enumerate(slices):
                target = out_dir / "data" / config / shard_name(split, i, len(slices))
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f"{temp_prefix()}{target.name}")
                tasks.append((config, split, a, b, str(tmp)))
                final[str(tmp)] = target
    tasks.sort(key=lambda t: -sum(e.duration for e in plan.examples[t[0]][t[1]][t[2]:t[3]]))
    _PLAN = plan
    try:
        figure_config = ("verified" if "verified" in written else next(iter(written), None)) if figures else None
        drawn: dict[str, str] = {}
        with tqdm(total=sum(t[3] - t[2] for t in tasks), unit="seg", desc="export", disable=not progress) as bar:
            if num_proc == 1:
                for task in tasks:
                    bar.update(_write_shard(task)[1])
                if figure_config:
                    drawn = _draw_figures((str(out_dir), figure_config))
            else:
                with mp.get_context("fork").Pool(num_proc) as pool:
                    pending = pool.apply_async(_draw_figures, ((str(out_dir), figure_config),)) if figure_config else None
                    for _, n in pool.imap_unordered(_write_shard, tasks):
                        bar.update(n)
                    drawn = pending.get() if pending else {}
        for tmp, target in final.items():
            os.replace(tmp, target)
    except BaseException:
        for tmp in final:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _PLAN = None
    for config in written:
        for stale in (out_dir / "data" / config).glob("*.parquet"):
            if stale not in final.values():
                stale.unlink()
    return (written, drawn) if figures else written
