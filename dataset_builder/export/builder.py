"""The dataset as a ``datasets`` builder, and its output as a Hub dataset repo of Parquet shards.

``datasets`` >= 4 no longer runs loading scripts from the Hub, so the builder is instantiated here, prepared,
and its splits written as Parquet with the audio bytes embedded; the README's YAML ``configs`` tell
``load_dataset(folder)`` where each config's splits are.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import datasets
import soundfile as sf

from ..audio import load_audio
from ..config import SAMPLE_RATE
from .plan import CONFIGS, Plan
from .splits import SPLITS

FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "audio": datasets.Audio(sampling_rate=SAMPLE_RATE),
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
})


class VecsDataset(datasets.GeneratorBasedBuilder):
    """Vietnamese–English code-switched speech: ``verified`` (human-verified) and ``prelabeled`` configs."""

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
        # Each segment is cut from the video's full-length audio by absolute time: no 305 s file edge.
        for ex in self.plan.examples[self.config.name][split]:
            samples = load_audio(ex.audio_path, start=ex.start, end=ex.end)
            buf = io.BytesIO()
            sf.write(buf, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            yield ex.id, {**ex.row(), "audio": {"bytes": buf.getvalue(), "path": f"{ex.id}.flac"}}


def write_parquet(plan: Plan, out_dir: Path, configs: tuple[str, ...] = CONFIGS) -> dict[str, dict[str, str]]:
    """Prepare each config and write ``data/<config>/<split>-00000-of-00001.parquet``; returns the paths.

    Shards are written under temporary names and renamed into place, and shards of an earlier export that
    this one no longer has are removed, so the folder is never half old, half new.
    """
    out_dir = Path(out_dir)
    written: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="vecs-export-") as cache:
        for config in configs:
            if not any(plan.examples[config].values()):
                continue
            builder = VecsDataset(config_name=config, cache_dir=cache, plan=plan)
            builder.download_and_prepare(download_mode="force_redownload")
            target = out_dir / "data" / config
            target.mkdir(parents=True, exist_ok=True)
            written[config] = {}
            for split in SPLITS:
                if not plan.examples[config][split]:
                    continue
                ds = builder.as_dataset(split=split)
                rel = f"data/{config}/{split}-00000-of-00001.parquet"
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=target)
                os.close(fd)
                try:
                    ds.to_parquet(tmp)
                    os.replace(tmp, out_dir / rel)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                written[config][split] = rel
            for stale in target.glob("*.parquet"):
                if stale.relative_to(out_dir).as_posix() not in written[config].values():
                    stale.unlink()
            shutil.rmtree(Path(cache) / "vecs_dataset", ignore_errors=True)
    return written
