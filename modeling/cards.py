"""Model cards rendered from the templates in ``model_cards/`` with the real arguments and metrics; the YAML
carries a ``model-index`` so the Hub shows the results."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = Path(__file__).resolve().parents[1] / "model_cards"
METRIC_NAMES = {"wer": "WER", "cer": "CER", "en_error_rate": "English-word error rate",
                "vi_error_rate": "Vietnamese-word error rate", "loop_rate": "Loop rate",
                "latency_mean_ms": "Latency mean (ms)", "latency_p95_ms": "Latency p95 (ms)", "rtf": "Real-time factor",
                "bleu": "BLEU", "chrf": "chrF"}
TRANSLATION_METRICS = {"bleu", "chrf"}


def _dataset_link(dataset: str) -> tuple[str, str | None]:
    if Path(dataset).exists():
        return f"a local VECS export (`{Path(dataset).name}`)", None
    return f"[{dataset}](https://huggingface.co/datasets/{dataset})", dataset


def render_card(template: str, folder: Path, *, args, summary: dict, tags: list[str], base_model,
                figures: tuple[str, ...], metrics: dict | None = None, split: str | None = None, **extra) -> Path:
    """Write ``folder/README.md`` from ``model_cards/<template>``; metrics default to the checkpoint's saved
    validation scores (``eval_results.json``), figures are copied from the run's folder."""
    folder = Path(folder)
    if metrics is None:
        saved = folder / "eval_results.json"
        metrics = json.loads(saved.read_text()) if saved.exists() else {}
    split = split or args.eval_split
    link, dataset_id = _dataset_link(args.dataset)
    repo_id = args.hub_model_id or f"vecs/{Path(args.output_dir).name}"
    shown = {k: v for k, v in metrics.items() if k in METRIC_NAMES and v is not None}
    results = [EvalResult(task_type="translation" if k in TRANSLATION_METRICS else "automatic-speech-recognition",
                          dataset_type=dataset_id or "vecs-local", dataset_name="VECS code-switched speech",
                          dataset_config=args.dataset_config, dataset_split=split, metric_type=k,
                          metric_name=METRIC_NAMES[k], metric_value=float(v)) for k, v in shown.items()]
    data = ModelCardData(language=["vi", "en"], license="apache-2.0", library_name="transformers",
                         pipeline_tag="automatic-speech-recognition", tags=["code-switching", "vecs", *tags],
                         datasets=[dataset_id] if dataset_id else None, base_model=base_model,
                         metrics=sorted({"wer", "cer"} | (TRANSLATION_METRICS & set(shown))), model_name=repo_id,
                         eval_results=results or None)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in figures:
        src = Path(args.output_dir) / name
        if src.exists():
            (folder / name).write_bytes(src.read_bytes())
            copied.append(name)
    training_args = {k: v for k, v in asdict(args).items() if k not in ("progress", "resume") and v is not None}
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / template), model_name=repo_id, repo_id=repo_id, dataset_link=link,
        args=args, eval_split=split, eval_samples=metrics.get("samples", "?"),
        metrics={METRIC_NAMES[k]: v for k, v in shown.items()}, training_args=training_args, summary=summary,
        figures=copied, signatures=[metrics[k] for k in ("bleu_signature", "chrf_signature") if metrics.get(k)],
        **extra)
    card.save(str(folder / "README.md"))
    return folder / "README.md"


def render_whisper_card(folder: Path, *, args, summary: dict, **kw) -> Path:
    scratch = args.model_name_or_path == "scratch"
    return render_card("whisper.md", folder, args=args, summary=summary, tags=["whisper"],
                       base_model=None if scratch else args.model_name_or_path,
                       figures=("cer_curve.png", "loss_curve.png", "length_scatter.png"), scratch=scratch, **kw)


def render_e2e_card(folder: Path, *, args, summary: dict, **kw) -> Path:
    scratch = args.encoder_name_or_path == "scratch"
    return render_card("e2e.md", folder, args=args, summary=summary,
                       tags=["speech-translation", "wav2vec2", "mbart-50"],
                       base_model=None if scratch else [args.encoder_name_or_path, args.decoder_name_or_path],
                       figures=("score_curve.png", "loss_curve.png"), scratch=scratch, **kw)
