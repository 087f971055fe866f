"""What an export kept, dropped and where it put it — computed once from the plan, written as
``export_report.json`` and the card's figures, and read by the card so the two never disagree."""
from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from dataset_builder.foundation.text import words

from ..foundation.atomic import write_text_atomic
from .plan import Plan
from .splits import SPLITS

REPORT = "export_report.json"
FIGURES = {"duration": "images/duration_histogram.png", "cmi": "images/cmi_histogram.png"}


def split_stats(plan: Plan, config: str) -> dict[str, dict]:
    """Per split: segments, hours, videos, channels, mean duration, code-switching figures."""
    stats = {}
    for split in SPLITS:
        exs = plan.examples[config][split]
        if not exs:
            continue
        rows = [e.row() for e in exs]
        stats[split] = {
            "segments": len(exs),
            "hours": round(sum(e.duration for e in exs) / 3600, 4),
            "videos": len({e.video_id for e in exs}),
            "channels": len({e.channel for e in exs}),
            "mean_duration_s": round(mean(e.duration for e in exs), 2),
            "words": sum(len(words(e.transcript)) for e in exs),
            "mean_cmi": round(mean(r["cmi"] for r in rows), 2),
            "code_switched_share": round(sum(0 < r["en_ratio"] < 1 for r in rows) / len(rows), 3),
            "mean_en_ratio": round(mean(r["en_ratio"] for r in rows), 3),
        }
    return stats


def build_report(plan: Plan, configs: tuple[str, ...], *, leakage_ok: bool, options: dict) -> dict:
    report = {"options": options, "group_by": plan.group_by,
              "leakage_check": {"passed": leakage_ok, "groups": len(plan.assignment),
                                "rule": f"no {plan.group_by} in two splits"},
              "configs": {}}
    for config in configs:
        kept = sum(len(v) for v in plan.examples[config].values())
        dropped = dict(sorted(plan.dropped[config].items()))
        report["configs"][config] = {
            "kept": kept, "dropped": dropped, "dropped_total": sum(dropped.values()),
            "hours": plan.hours(config), "splits": split_stats(plan, config),
        }
    return report


def write_report(out_dir: Path, report: dict) -> Path:
    return write_text_atomic(Path(out_dir) / REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def write_figures(out_dir: Path, plan: Plan, config: str) -> dict[str, str]:
    """Duration and CMI histograms per split of ``config``, for the card."""
    from dataset_builder.foundation.plots import histogram

    exs = {s: plan.examples[config][s] for s in SPLITS if plan.examples[config][s]}
    histogram({s: [e.duration for e in v] for s, v in exs.items()}, Path(out_dir) / FIGURES["duration"],
              title=f"Segment duration ({config})", xlabel="seconds")
    histogram({s: [e.row()["cmi"] for e in v] for s, v in exs.items()}, Path(out_dir) / FIGURES["cmi"],
              title=f"Code-mixing index per segment ({config})", xlabel="CMI (0 = one language, 50 = even mix)",
              range_=(0, 50), bins=25)
    return dict(FIGURES)
