"""Model cards rendered from the templates in ``model_cards/`` with the real arguments and metrics; the YAML
carries a ``model-index`` so the Hub shows the results."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(__file__).resolve().parents[1] / "model_cards"
METRIC_NAMES = {"wer": "WER", "cer": "CER", "en_error_rate": "English-word error rate",
                "vi_error_rate": "Vietnamese-word error rate", "loop_rate": "Loop rate",
                "latency_mean_ms": "Latency mean (ms)", "latency_p95_ms": "Latency p95 (ms)", "rtf": "Real-time factor",
                "bleu": "BLEU", "chrf": "chrF"}


def _dataset_link(dataset: str) -> tuple[str, str | None]:
    if Path(dataset).exists():
        return f"a local VECS export (`{Path(dataset).name}`)", None
    return f"[{dataset}](https://huggingface.co/datasets/{dataset})", dataset


def render_whisper_card(folder: Path, *, args, summary: dict, history: list[dict], metrics: dict | None = None,
                        split: str | None = None) -> Path:
    """Write ``folder/README.md`` for a Whisper checkpoint; metrics default to its saved validation scores."""
    import json

    folder = Path(folder)
    if metrics is None:
        saved = folder / "eval_results.json"
        metrics = json.loads(saved.read_text()) if saved.exists() else {}
    split = split or args.eval_split
    link, dataset_id = _dataset_link(args.dataset)
    repo_id = args.hub_model_id or f"vecs/{Path(args.output_dir).name}"
    shown = {k: v for k, v in metrics.items() if k in METRIC_NAMES and v is not None}
    results = [EvalResult(task_type="automatic-speech-recognition", dataset_type=dataset_id or "vecs-local",
                          dataset_name="VECS code-switched speech", dataset_config=args.dataset_config,
                          dataset_split=split, metric_type=k, metric_name=METRIC_NAMES[k], metric_value=float(v))
               for k, v in shown.items()]
    base = None if args.model_name_or_path == "scratch" else args.model_name_or_path
    data = ModelCardData(language=["vi", "en"], license="apache-2.0", library_name="transformers",
                         pipeline_tag="automatic-speech-recognition", tags=["whisper", "code-switching", "vecs"],
                         datasets=[dataset_id] if dataset_id else None, base_model=base,
                         metrics=["wer", "cer"], model_name=repo_id, eval_results=results or None)
    figures = []
    for name in ("cer_curve.png", "loss_curve.png", "length_scatter.png"):
        src = Path(args.output_dir) / name
        if src.exists() and folder.exists():
            (folder / name).write_bytes(src.read_bytes())
            figures.append(name)
    training_args = {k: v for k, v in asdict(args).items() if k not in ("progress", "resume") and v is not None}
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / "whisper.md"), model_name=repo_id, repo_id=repo_id, dataset_link=link,
        args=args, eval_split=split, eval_samples=metrics.get("samples", "?"),
        metrics={METRIC_NAMES[k]: v for k, v in shown.items()}, training_args=training_args, summary=summary,
        figures=figures, scratch=args.model_name_or_path == "scratch")
    folder.mkdir(parents=True, exist_ok=True)
    card.save(str(folder / "README.md"))
    return folder / "README.md"
