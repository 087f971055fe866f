"""Model cards rendered from the templates in ``model_cards/`` with the real arguments and metrics; the YAML
carries a ``model-index`` so the Hub shows the results. Each family says how its card is drawn
(:class:`CardSpec`, declared beside its training task)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

TEMPLATES = files("model_cards")  # package data: cards render from an installed wheel too
METRIC_NAMES = {"wer": "WER", "cer": "CER", "en_error_rate": "English-word error rate",
                "vi_error_rate": "Vietnamese-word error rate", "loop_rate": "Loop rate",
                "latency_mean_ms": "Latency mean (ms)", "latency_p95_ms": "Latency p95 (ms)", "rtf": "Real-time factor",
                "bleu": "BLEU", "chrf": "chrF"}
TRANSLATION_METRICS = {"bleu", "chrf"}


@dataclass(frozen=True)
class CardSpec:
    template: str  # a file in model_cards/
    tags: tuple[str, ...]
    figures: tuple[str, ...]  # copied from the run's folder when they exist
    base_model_args: tuple[str, ...]  # the arguments naming the checkpoints it starts from ("scratch": none)
    pipeline_tag: str = "automatic-speech-recognition"

    def base_model(self, args):
        names = [getattr(args, a) for a in self.base_model_args]
        if not names or names[0] == "scratch":
            return None
        return names[0] if len(names) == 1 else names


def hub_repo_id(args) -> str:
    """The repo a run pushes to, and the id its card shows."""
    return args.hub_model_id or Path(args.output_dir).name


LOCAL_DATASET = "local"  # the model-index's dataset type when the data never was on the Hub


def _dataset_link(args) -> tuple[str, str | None]:
    """How the card names the training data, and its Hub id (a local copy of a Hub dataset names the original)."""
    hub_id = getattr(args, "dataset_hub_id", None) or (None if Path(args.dataset).exists() else args.dataset)
    if hub_id:
        return f"[{hub_id}](https://huggingface.co/datasets/{hub_id})", hub_id
    return f"a local VECS export (`{Path(args.dataset).name}`, not on the Hub)", None


def render_card(spec: CardSpec, folder: Path, *, args, summary: dict, metrics: dict | None = None,
                split: str | None = None) -> Path:
    """Write ``folder/README.md`` from ``model_cards/<spec.template>``; metrics default to the checkpoint's saved
    validation scores (``eval_results.json``), figures are copied from the run's folder."""
    folder = Path(folder)
    if metrics is None:
        saved = folder / "eval_results.json"
        metrics = json.loads(saved.read_text()) if saved.exists() else {}
    split = split or args.eval_split
    link, dataset_id = _dataset_link(args)
    repo_id = hub_repo_id(args)
    base_model = spec.base_model(args)
    shown = {k: v for k, v in metrics.items() if k in METRIC_NAMES and v is not None}
    results = [EvalResult(task_type="translation" if k in TRANSLATION_METRICS else "automatic-speech-recognition",
                          dataset_type=dataset_id or LOCAL_DATASET,
                          dataset_name="VECS code-switched speech" + ("" if dataset_id else " (a local export)"),
                          dataset_config=args.dataset_config, dataset_split=split, metric_type=k,
                          metric_name=METRIC_NAMES[k], metric_value=float(v)) for k, v in shown.items()]
    data = ModelCardData(language=["vi", "en"], license="apache-2.0", library_name="transformers",
                         pipeline_tag=spec.pipeline_tag, tags=["code-switching", "vecs", *spec.tags],
                         datasets=[dataset_id] if dataset_id else None, base_model=base_model,
                         metrics=sorted({"wer", "cer", *TRANSLATION_METRICS} & set(shown)) or None, model_name=repo_id,
                         eval_results=results or None)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in spec.figures:
        src = Path(args.output_dir) / name
        if src.exists():
            (folder / name).write_bytes(src.read_bytes())
            copied.append(name)
    training_args = {k: v for k, v in asdict(args).items() if k not in ("progress", "resume") and v is not None}
    card = ModelCard.from_template(
        data, template_path=str(TEMPLATES / spec.template), model_name=repo_id, repo_id=repo_id, dataset_link=link,
        args=args, eval_split=split, eval_samples=metrics.get("samples", "?"),
        metrics={METRIC_NAMES[k]: v for k, v in shown.items()}, training_args=training_args, summary=summary,
        figures=copied, signatures=[metrics[k] for k in ("bleu_signature", "chrf_signature") if metrics.get(k)],
        scratch=base_model is None)
    card.save(str(folder / "README.md"))
    return folder / "README.md"
