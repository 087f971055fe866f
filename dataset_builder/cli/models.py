"""The model half as ``vecs`` subcommands: ``train <family>`` for every family in the registry, ``transcribe``
and ``evaluate``. torch and transformers load when a command runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from modeling.registry import FAMILIES

from ._console import err, out

train_app = typer.Typer(help="Train models on a VECS dataset (--help after a family lists its arguments).",
                        no_args_is_help=True)
# How a model runs, for every command that runs one.
Device = Annotated[str, typer.Option("--device", help="auto (a GPU when there is one), cpu, cuda or cuda:N.")]
Dtype = Annotated[str, typer.Option("--dtype", help="auto (bf16/fp16 on a GPU, fp32 on a CPU), float32, bfloat16, "
                                                   "float16.")]
Backend = Annotated[str, typer.Option("--backend", help="transformers or ct2 (CTranslate2: int8 on a CPU, fp16 on a GPU; "
                                                       "needs a conversion, see vecs convert); auto: ct2 for a "
                                                       "CTranslate2 folder.")]
Quantization = Annotated[str, typer.Option("--quantization", help="ct2 compute type (auto, int8, float16, …).")]
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


def _train_command(family):
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(family.main(list(ctx.args)))

    command.__doc__ = f"{family.title}."
    return command


for _family in FAMILIES.values():
    train_app.command(_family.name, context_settings=_PASS_THROUGH)(_train_command(_family))


def transcribe_cmd(
    audio: Path = typer.Argument(..., help="An audio or video file."),
    model: str = typer.Option(..., "--model", help="Whisper model: repo id or local folder."),
    stream: bool = typer.Option(False, "--stream", help="Feed the file chunk by chunk, as a microphone would."),
    chunk: float = typer.Option(0.5, "--chunk", min=0.1, max=2.0, help="Seconds per chunk when streaming."),
    languages: str = typer.Option("vi,en", "--languages", help="The language pair (bilingual mode)."),
    realtime: bool = typer.Option(False, "--realtime", help="Stream at the speed of the audio."),
    translate: Optional[str] = typer.Option(None, "--translate", help="Streaming: translate each commit to "
                                            "Vietnamese with this MT or E2E model (repo id or folder)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of text."),
    device: Device = "auto",
    dtype: Dtype = "auto",
    backend: Backend = "auto",
    quantization: Quantization = "auto",
) -> None:
    """Transcribe code-switched speech, offline or streaming (LocalAgreement-2, bilingual language tags)."""
    from dataset_builder.foundation.audio import MediaError
    from modeling.loading import ModelError
    from modeling.runtime import Runtime
    from modeling.streaming.transcribe import read_clip, transcribe_offline, transcribe_stream

    pair = tuple(x.strip() for x in languages.split(",") if x.strip())
    if len(pair) < 1:
        err.print("[red]error:[/red] --languages: give one or two language codes, e.g. vi,en", highlight=False)
        raise typer.Exit(2)
    if translate and not stream:
        err.print("[red]error:[/red] --translate needs --stream (offline translation: vecs evaluate --task st)",
                  highlight=False)
        raise typer.Exit(2)
    try:
        runtime = Runtime(device, dtype, backend, quantization).check()
        samples = read_clip(str(audio))
        segments = (transcribe_stream(samples, model, chunk=chunk, languages=pair, realtime=realtime,
                                      translate=translate, runtime=runtime) if stream
                    else transcribe_offline(samples, model, runtime=runtime))
    except (MediaError, ModelError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2)
    for seg in segments:
        if as_json:
            out.print(json.dumps(seg.__dict__, ensure_ascii=False), highlight=False, soft_wrap=True)
        else:
            lat = f"  (+{seg.latency:.2f} s)" if seg.latency is not None else ""
            out.print(f"[{seg.start:7.2f}–{seg.end:7.2f}] {seg.language}: {seg.text}{lat}", highlight=False,
                      soft_wrap=True)
            if seg.translation:
                out.print(f"{'':18}→ {seg.translation}", highlight=False, soft_wrap=True)


def evaluate_cmd(
    dataset: str = typer.Option(..., "--dataset", help="Dataset repo id or local export folder."),
    model: Optional[str] = typer.Option(None, "--model", help="Whisper or E2E model: repo id or local folder."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="st: the cascade's Whisper."),
    mt_model: Optional[str] = typer.Option(None, "--mt-model", help="st: the cascade's MT model."),
    config: str = typer.Option("verified", "--config"),
    split: str = typer.Option("test", "--split"),
    task: str = typer.Option("asr", "--task", help="asr (transcripts) or st (Vietnamese translation)."),
    out_dir: Path = typer.Option(Path("eval_out"), "--out", help="Where metrics.json and the plots go."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate the first N samples only."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    device: Device = "auto",
    dtype: Dtype = "auto",
    backend: Backend = "auto",
    quantization: Quantization = "auto",
) -> None:
    """Score models: WER/CER, English- and Vietnamese-word error rates, loops, latency (asr); BLEU/chrF of
    E2E and the cascade side by side (st); metrics.json and plots."""
    from modeling.data import DataError
    from modeling.loading import ModelError
    from modeling.runtime import Runtime

    if task not in ("asr", "st"):
        err.print(f"[red]error:[/red] --task {task!r}: expected asr or st", highlight=False)
        raise typer.Exit(2)
    from modeling.evaluate import evaluate_asr, evaluate_st

    try:
        runtime = Runtime(device, dtype, backend, quantization).check()
        if task == "asr":
            if not model:
                raise ValueError("--task asr needs --model")
            m = evaluate_asr(model, dataset, config=config, split=split, out_dir=out_dir, batch_size=batch_size,
                             limit=limit, progress=progress, runtime=runtime)
        else:
            m = evaluate_st(dataset, e2e=model, asr_model=asr_model, mt_model=mt_model, config=config, split=split,
                            out_dir=out_dir, batch_size=batch_size, limit=limit, progress=progress,
                            runtime=runtime)
    except (DataError, ModelError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2)
    if task == "asr":
        table = Table("Metric", "Value")
        for k in ("samples", "wer", "cer", "en_error_rate", "vi_error_rate", "loop_rate", "latency_mean_ms",
                  "latency_p95_ms", "rtf"):
            table.add_row(k, str(m.get(k)))
        out.print(table)
        out.print(f"wrote {out_dir / 'metrics.json'}, predictions.jsonl, length_scatter.png")
        return
    table = Table("System", "BLEU", "chrF", "latency mean ms", "p95 ms", "RTF", "samples")
    for name, r in m["systems"].items():
        table.add_row(name, f"{r['bleu']:.2f}", f"{r['chrf']:.2f}", str(r["latency_mean_ms"]),
                      str(r["latency_p95_ms"]), str(r["rtf"]), str(r["samples"]))
    out.print(table)
    first = next(iter(m["systems"].values()))
    out.print(f"BLEU signature: {first['bleu_signature']}")
    out.print(f"chrF signature: {first['chrf_signature']}")
    out.print(f"wrote {out_dir / 'metrics.json'}, predictions.jsonl, st_scores.png")


def convert_cmd(
    model: str = typer.Argument(..., help="A Whisper checkpoint: repo id or local folder."),
    to: str = typer.Option("ct2", "--to", help="Target format: ct2 (CTranslate2)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for the converted model."),
    quantization: str = typer.Option("float16", "--quantization", help="Weights as stored: float16 (loads as int8 "
                                     "on a CPU, float16 on a GPU), int8, int8_float16, float32 or none."),
) -> None:
    """Convert a Whisper checkpoint for the CTranslate2 backend (--backend ct2), with CTranslate2's own converter."""
    from modeling.loading import ModelError
    from modeling.registry import family_of
    from modeling.whisper.ct2 import convert

    if to != "ct2":
        err.print(f"[red]error:[/red] --to {to!r}: expected ct2", highlight=False)
        raise typer.Exit(2)
    try:
        if family_of(model).name != "whisper":
            raise ModelError(f"model {model!r}: only Whisper models convert to CTranslate2 here")
        folder = convert(model, out_dir, quantization=quantization)
    except ModelError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2)
    out.print(f"wrote {folder} (vecs transcribe AUDIO --model {folder}; the backend follows the folder)")
