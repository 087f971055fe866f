"""The dataset card: YAML that ``load_dataset`` and the Hub read (configs, features, languages, license),
and a body generated from the data."""
from __future__ import annotations

from pathlib import Path

import yaml

from ..atomic import write_text_atomic
from .plan import Plan
from .splits import SPLITS


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def render(plan: Plan, written: dict[str, dict[str, str]], license: str = "cc-by-4.0") -> str:
    total = sum(len(v) for v in plan.examples["prelabeled"].values())
    meta = {
        "language": ["vi", "en"],
        "license": license,
        "task_categories": ["automatic-speech-recognition", "translation"],
        "tags": ["code-switching", "vietnamese", "speech-translation"],
        "size_categories": [_size_category(total)],
        "pretty_name": "VECS: Vietnamese–English code-switched speech",
        "configs": [
            {"config_name": config, **({"default": True} if config == "verified" else {}),
             "data_files": [{"split": split, "path": path} for split, path in splits.items()]}
            for config, splits in written.items()
        ],
    }
    lines = ["---", yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip(), "---", "",
             "# VECS — Vietnamese–English code-switched speech", "",
             "Verbatim code-switched transcripts with Vietnamese translations, cut from long-form recordings by "
             "the VECS factory (pre-labels, human verification in Argilla, a 300-second guillotine with "
             f"leading-edge de-duplication, splits disjoint by {plan.group_by}).", "",
             "| config | split | segments | hours |", "|---|---|---|---|"]
    for config in written:
        hours = plan.hours(config)
        for split in SPLITS:
            if split in written[config]:
                lines.append(f"| {config} | {split} | {len(plan.examples[config][split])} | {hours[split]:.3f} |")
    lines += ["", "Dropped, by reason:", ""]
    for config in written:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(plan.dropped[config].items())) or "none"
        lines.append(f"- {config}: {reasons}")
    lines += ["", "```python", "from datasets import load_dataset", "", 'ds = load_dataset("PATH_OR_REPO")          '
              '# verified', 'pre = load_dataset("PATH_OR_REPO", "prelabeled")', "```", ""]
    return "\n".join(lines)


def write_card(out_dir: Path, plan: Plan, written: dict[str, dict[str, str]]) -> Path:
    return write_text_atomic(Path(out_dir) / "README.md", render(plan, written))
