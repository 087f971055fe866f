"""The dataset card: YAML that ``load_dataset`` and the Hub read (configs, features, languages, license),
and a body generated from the export report — statistics, figures, drops and known limitations."""
from __future__ import annotations

from pathlib import Path

import datasets
import yaml

from ..foundation.atomic import write_text_atomic
from .builder import FEATURES
from .plan import Plan
from .splits import SPLITS

DROP_REASONS = {
    "overlap_zone": "in a chunk's 5 s overlap zone, kept from the next chunk instead (300 s guillotine)",
    "leading_edge_duplicate": "tail of an utterance already kept whole from the previous chunk",
    "not_verified": "not yet verified by an annotator",
    "discarded": "discarded by an annotator",
    "empty_transcript": "empty after sanitization",
    "too_short": "shorter than the minimum duration",
    "too_long": "longer than the maximum duration",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _features_yaml() -> list[dict]:
    out = []
    for name, feat in FEATURES.items():
        if isinstance(feat, datasets.Audio):
            out.append({"name": name, "dtype": {"audio": {"sampling_rate": feat.sampling_rate}}})
        else:
            out.append({"name": name, "dtype": feat.dtype})
    return out


RIGHTS = ("The audio comes from public recordings whose rights stay with their owners; each row names its source "
          "(`source_url`, `channel_url`, `uploader`) and the license the source reported (`license`). It is shared "
          "for research on code-switched speech.")


def metadata(plan: Plan, written: dict[str, dict[str, str]], license: str, gated_prompt: str | None = None) -> dict:
    total = sum(len(v) for v in plan.examples["prelabeled"].values()) or \
        sum(len(v) for v in plan.examples["verified"].values())
    gated = {"extra_gated_prompt": gated_prompt} if gated_prompt else {}
    return {
        "language": ["vi", "en"],
        "license": license,
        **({"license_name": "source-owners-rights", "license_details": RIGHTS} if license == "other" else {}),
        **gated,
        "multilinguality": ["multilingual"],
        "task_categories": ["automatic-speech-recognition", "translation"],
        "tags": ["code-switching", "vietnamese", "speech-translation", "audio"],
        "size_categories": [_size_category(total)],
        "pretty_name": "VECS: Vietnamese–English code-switched speech",
        "dataset_info": [{"config_name": config, "features": _features_yaml()} for config in written],
        "configs": [
            {"config_name": config, **({"default": True} if config == "verified" else {}),
             "data_files": [{"split": split, "path": path} for split, path in splits.items()]}
            for config, splits in written.items()
        ],
    }


def render(plan: Plan, written: dict[str, dict[str, str]], report: dict, figures: dict[str, str] | None = None,
           license: str = "other", gated_prompt: str | None = None) -> str:
    lines = ["---", yaml.safe_dump(metadata(plan, written, license, gated_prompt), allow_unicode=True,
                                   sort_keys=False).strip(),
             "---", "", "# VECS — Vietnamese–English code-switched speech", "",
             "Speech in which Vietnamese speakers switch into English mid-sentence (*mình có một meeting rất quan "
             "trọng với team*), with verbatim code-switched transcripts, Vietnamese translations and timestamps.", "",
             "## How it was built", "",
             "1. Long-form recordings were decoded once to 16 kHz mono and cut into 300 s chunks with 5 s of overlap.",
             "2. A pre-labeler (Gemini through a quota-pooling key pool, or the source's captions) transcribed each "
             "chunk verbatim and translated it into Vietnamese; segment boundaries were refined with silero-vad.",
             "3. Annotators verified or corrected each segment in Argilla (`verified` config).",
             "4. Each utterance is kept exactly once: a segment is taken from the chunk where it starts before "
             "300 s, and the partial copy a pre-labeler writes at the start of the next chunk is removed by "
             "absolute-time overlap. Audio is cut from the full recording, so an utterance crossing a chunk edge "
             "keeps its tail.",
             "5. Text was sanitized (annotation tags, markdown, zero-width and non-breaking spaces removed, "
             "Unicode NFC, whitespace collapsed) and segments outside "
             f"{report['options'].get('min_duration', 0.5)}–{report['options'].get('max_duration', 30.0)} s dropped.",
             f"6. Splits are disjoint by **{plan.group_by}**, assigned by a stable hash of the {plan.group_by} and "
             f"seed {report['options'].get('seed', 42)}, balanced by hours: adding recordings never moves an "
             f"existing one to another split. Leakage check: "
             f"{'passed' if report['leakage_check']['passed'] else 'FAILED'} "
             f"({report['leakage_check']['groups']} {plan.group_by}s, none in two splits).", "",
             "## Configs and columns", "",
             "- `verified` (default): segments an annotator accepted or corrected; times are the corrected ones.",
             "- `prelabeled`: every segment with its machine label. A recording sits in the same split in both.", "",
             "Columns: " + ", ".join(f"`{n}`" for n in FEATURES) + ". `cmi` is the code-mixing index (0 = one "
             "language, 50 = an even mix); `en_ratio` the share of English words. `title`, `license`, `uploader`, "
             "`upload_date` (YYYYMMDD), `channel_id` and `channel_url` are the recording's provenance as its source "
             "reported it (empty when it did not, e.g. a local file).", "",
             "## Statistics", "",
             "| config | split | segments | hours | videos | channels | mean s | words | mean CMI | code-switched |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for config, c in report["configs"].items():
        for split in SPLITS:
            if split in c["splits"]:
                s = c["splits"][split]
                lines.append(f"| {config} | {split} | {s['segments']} | {s['hours']:.3f} | {s['videos']} | "
                             f"{s['channels']} | {s['mean_duration_s']:.1f} | {s['words']} | {s['mean_cmi']:.1f} | "
                             f"{100 * s['code_switched_share']:.0f}% |")
    lines += ["", "Speakers are not annotated; each channel's host is the closest proxy, which is why "
              "`--group-by channel` exists for speaker-disjoint splits.", ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![Segment durations per split]({figures['duration']})", "",
                  f"![Code-mixing index per split]({figures['cmi']})", ""]
    lines += ["## What was dropped", "", "| config | reason | segments |", "|---|---|---:|"]
    for config, c in report["configs"].items():
        for reason, n in c["dropped"].items():
            lines.append(f"| {config} | {DROP_REASONS.get(reason, reason.replace('quality:', 'quality label: '))} "
                         f"| {n} |")
    lines += ["", "## Usage", "", "```python", "from datasets import load_dataset", "",
              'ds = load_dataset("PATH_OR_REPO")                 # verified', 
              'pre = load_dataset("PATH_OR_REPO", "prelabeled")',
              'ex = ds["train"][0]', 'samples = ex["audio"].get_all_samples()   # 16 kHz', "```", "",
              "From a local copy that was exported again in place, pass `download_mode=\"force_redownload\"`: "
              "`datasets` caches a local folder under its name and does not notice rewritten shards.", "",
              "## Known limitations", "",
              "- `prelabeled` transcripts and translations are machine output and contain errors; train on "
              "`verified` or treat `prelabeled` as weak labels.",
              "- Segments come from the recordings' own channels; accents, topics and recording conditions follow "
              "those channels and are not balanced.",
              "- Splits grouped by video can share a speaker across splits when a channel's host appears in "
              "several videos; use a channel-grouped export for speaker-independent evaluation.",
              "- Language of a word is decided by orthography (Vietnamese diacritics vs plain ASCII), so "
              "unaccented Vietnamese words and loanwords can be miscounted in `cmi` and `en_ratio`.",
              "- Every row keeps its `source_url`; the audio's rights stay with its owners. Use for research.", "",
              "## License and takedown", "",
              (f"License: `{license}`. " if license != "other" else "") + RIGHTS, "",
              "To have a recording removed, open a discussion on this repository (or write to its maintainers) "
              "with its `video_id` or `source_url`. The maintainers remove the video from the factory "
              "(its rows, audio and chunks), export again and push: a push replaces the whole dataset in one "
              "commit, so the recording's rows and shards leave the repository at once (its history keeps older "
              "commits; ask the Hub to purge them if needed).", ""]
    return "\n".join(lines)


def write_card(out_dir: Path, plan: Plan, written: dict[str, dict[str, str]], report: dict,
               figures: dict[str, str] | None = None, *, license: str = "other",
               gated_prompt: str | None = None) -> Path:
    return write_text_atomic(Path(out_dir) / "README.md", render(plan, written, report, figures, license, gated_prompt))
