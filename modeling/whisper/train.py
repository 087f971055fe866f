"""Fine-tune (or train from scratch) Whisper on a VECS dataset with accelerate.

``accelerate launch scripts/train_whisper.py --config_file scripts/accelerate/ddp.yaml ...`` runs the same
loop under DDP, FSDP or DeepSpeed. Checkpoints (``checkpoint-N``) resume exactly; ``best/`` holds the model
with the lowest validation CER, with its processor and card, and is what ``--push_to_hub`` uploads.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import DataError, load_split, length_grouped_batches
from ..metrics import asr_scores
from .collate import WhisperCollator
from .decode import WhisperTranscriber
from .model import ModelError, WhisperWithCTC, build_offline, load, set_input_seconds


@dataclass
class WhisperTrainingArguments:
    output_dir: str = field(metadata={"help": "Where checkpoints, best/ and the logs go."})
    dataset: str = field(metadata={"help": "Hub dataset repo id or a local `vecs export` folder."})
    model_name_or_path: str = field(default="openai/whisper-small", metadata={
        "help": "Checkpoint to fine-tune; `scratch` builds a small Whisper and a tokenizer from the training text."})
    dataset_config: str = "verified"
    train_split: str = "train"
    eval_split: str = "validation"
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 50
    max_steps: int = 0
    num_train_epochs: float = 3.0
    eval_steps: int = 200
    save_steps: int = 200
    logging_steps: int = 10
    max_eval_samples: int = 200
    max_train_samples: Optional[int] = None
    max_train_minutes: Optional[float] = field(default=None, metadata={
        "help": "Stop (evaluate, save, push) once this much wall time has passed in this run."})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16."})
    gradient_checkpointing: bool = False
    spec_augment: bool = False
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0
    ctc_weight: float = field(default=0.0, metadata={"help": "Weight of the encoder CTC loss (0.3 works well)."})
    input_seconds: float = field(default=30.0, metadata={"help": "Encoder input length; shorter for short segments."})
    timestamp_fraction: float = field(default=0.2, metadata={"help": "Share of samples with timestamp targets."})
    scratch_d_model: int = 256
    scratch_encoder_layers: int = 4
    scratch_decoder_layers: int = 2
    scratch_vocab_size: int = 1200
    seed: int = 42
    resume: bool = True
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None
    hub_private: bool = False
    progress: bool = True


def _checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(re.findall(r"\d+", p.name)[-1]))


def _model_and_processor(args: WhisperTrainingArguments, texts: list[str], out: Path):
    base = out / "base"  # what training started from, so a resumed run rebuilds exactly the same model
    if (base / "config.json").exists():
        return load(str(base))
    if args.model_name_or_path == "scratch":
        model, processor = build_offline(texts, input_seconds=args.input_seconds, vocab_size=args.scratch_vocab_size,
                                         d_model=args.scratch_d_model, encoder_layers=args.scratch_encoder_layers,
                                         decoder_layers=args.scratch_decoder_layers)
    else:
        model, processor = load(args.model_name_or_path, input_seconds=args.input_seconds)
    model.save_pretrained(base)
    processor.save_pretrained(base)
    return model, processor


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


def train(args: WhisperTrainingArguments) -> dict:
    """Run training; returns the summary also written to ``output_dir/train_results.json``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              gradient_accumulation_steps=args.gradient_accumulation_steps)
    set_seed(args.seed)
    # Everything that can be wrong with the data or the model fails here, before the first step.
    train_data = load_split(args.dataset, args.dataset_config, args.train_split, max_seconds=args.input_seconds,
                            limit=args.max_train_samples)
    eval_data = load_split(args.dataset, args.dataset_config, args.eval_split, max_seconds=args.input_seconds,
                           limit=args.max_eval_samples)
    model, processor = _model_and_processor(args, [s.transcript for s in train_data.samples], out)
    if model.config.max_source_positions * 0.02 > args.input_seconds + 1e-6:
        set_input_seconds(model, processor, args.input_seconds)
    # Sinusoidal, frozen in Whisper; from_pretrained leaves them trainable, which would also make a resumed
    # run's optimizer groups differ from the first run's.
    model.model.encoder.embed_positions.requires_grad_(False)
    model.config.apply_spec_augment = args.spec_augment
    model.config.mask_time_prob, model.config.mask_feature_prob = args.mask_time_prob, args.mask_feature_prob
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    collator = WhisperCollator(processor, timestamp_fraction=args.timestamp_fraction, seed=args.seed)
    # A bound for generation learned from the data: the densest labels, with a margin.
    rates = [len(collator.text_ids(s.transcript)) / max(s.duration, 0.5) for s in train_data.samples]
    model.generation_config.vecs_tokens_per_second = round(float(np.percentile(rates, 99)) * 1.25 + 1.0, 2)

    net = WhisperWithCTC(model, args.ctc_weight)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    per_epoch = math.ceil(len(train_data.samples) / args.per_device_train_batch_size / accelerator.num_processes)
    updates_per_epoch = max(1, per_epoch // args.gradient_accumulation_steps)
    total = args.max_steps or int(math.ceil(args.num_train_epochs * updates_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(args.warmup_steps, total))
    net, optimizer, scheduler = accelerator.prepare(net, optimizer, scheduler)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_cer": None, "best_step": None, "history": []}
    checkpoints = _checkpoints(out)
    if args.resume and checkpoints:
        accelerator.load_state(str(checkpoints[-1]))
        state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
        accelerator.print(f"resumed from {checkpoints[-1].name} (step {state['step']})")

    lengths = [s.duration for s in train_data.samples]
    skipped_batches = 0
    t_start = time.perf_counter()
    samples_seen, train_seconds = 0, 0.0  # training work only: evaluation and checkpoints excluded
    bar = tqdm(total=total, initial=state["step"], desc="train whisper", disable=not (args.progress and
                                                                                         accelerator.is_main_process))
    running: list[float] = []
    deadline = t_start + 60 * args.max_train_minutes if args.max_train_minutes else None
    while state["step"] < total:
        batches = list(length_grouped_batches(lengths, args.per_device_train_batch_size * accelerator.num_processes,
                                              seed=args.seed + state["epoch"]))
        for b_index in range(state["batch_in_epoch"], len(batches)):
            if state["step"] >= total:
                break
            t_batch = time.perf_counter()
            idx = batches[b_index][accelerator.process_index::accelerator.num_processes]
            pairs = []
            for i in idx:
                s = train_data.samples[i]
                try:
                    pairs.append((s, s.samples()))
                except Exception:
                    train_data.skipped["undecodable_audio"] += 1
            state["batch_in_epoch"] = b_index + 1
            if not pairs:
                skipped_batches += 1
                continue
            batch = collator(pairs)
            with accelerator.accumulate(net):
                loss, ce, ctc = net(**{k: (v.to(accelerator.device) if torch.is_tensor(v) else v)
                                       for k, v in batch.items()})
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            samples_seen += len(pairs)
            running.append(float(loss))  # waits for the device, so the time below is the step's real time
            train_seconds += time.perf_counter() - t_batch
            if not accelerator.sync_gradients:
                continue
            state["step"] += 1
            bar.update(1)
            step = state["step"]
            if deadline and step < total and _all_agree(accelerator, time.perf_counter() > deadline):
                accelerator.print(f"time budget of {args.max_train_minutes} min reached at step {step}")
                total = step  # this step becomes the last: logged, evaluated, saved
            if step % args.logging_steps == 0 or step == total:
                entry = {"step": step, "loss": round(sum(running) / len(running), 4), "ce": round(float(ce), 4),
                         "lr": scheduler.get_last_lr()[0]}
                if ctc is not None:
                    entry["ctc"] = round(float(ctc), 4)
                state["history"].append(entry)
                bar.set_postfix(loss=entry["loss"])
                running = []
            if step % args.eval_steps == 0 or step == total:
                scores = evaluate_during_training(accelerator.unwrap_model(net).whisper, processor, eval_data,
                                                  args.per_device_eval_batch_size)
                state["history"].append({"step": step, **{f"eval_{k}": v for k, v in scores.items()}})
                accelerator.print(f"step {step}: eval CER {scores['cer']:.4f} WER {scores['wer']:.4f} "
                                  f"loops {scores['loop_rate']:.3f}")
                if state["best_cer"] is None or scores["cer"] < state["best_cer"]:
                    state["best_cer"], state["best_step"] = scores["cer"], step
                    if accelerator.is_main_process:
                        _save_best(accelerator.unwrap_model(net), processor, out, scores, step)
            if step % args.save_steps == 0 or step == total:
                _save_checkpoint(accelerator, out, state)
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    elapsed = time.perf_counter() - t_start
    summary = {"steps": state["step"], "best_step": state["best_step"], "best_eval_cer": state["best_cer"],
               "train_samples": len(train_data.samples), "train_hours": round(train_data.hours, 4),
               "skipped": dict(train_data.skipped), "eval_skipped": dict(eval_data.skipped),
               "train_seconds_this_run": round(elapsed, 1),
               "train_samples_per_second": round(samples_seen / train_seconds, 3) if train_seconds else None,
               "args": asdict(args)}
    if accelerator.is_main_process:
        (out / "train_results.json").write_text(json.dumps({**summary, "history": state["history"]}, indent=2))
        _plot_curves(state["history"], out)
        from ..cards import render_whisper_card

        render_whisper_card(out / "best", args=args, summary=summary, history=state["history"])
        if args.push_to_hub:
            from ..hub import push_model

            summary["hub_url"] = push_model(out / "best", args.hub_model_id or Path(args.output_dir).name,
                                            private=args.hub_private)
    return summary


def _all_agree(accelerator, flag: bool) -> bool:
    """True when any process says so: every rank stops at the same step (or DDP would hang)."""
    t = torch.tensor([int(flag)], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item()) if accelerator.num_processes > 1 else flag


def evaluate_during_training(model, processor, data, batch_size: int) -> dict:
    was_training = model.training
    transcriber = WhisperTranscriber(model, processor)
    refs, hyps = [], []
    for i in range(0, len(data.samples), batch_size):
        chunk = data.samples[i:i + batch_size]
        outs = transcriber.transcribe([s.samples() for s in chunk])
        refs += [s.transcript for s in chunk]
        hyps += [o.text for o in outs]
    model.train(was_training)
    return asr_scores(refs, hyps)


def _save_best(net: WhisperWithCTC, processor, out: Path, scores: dict, step: int) -> None:
    tmp = out / ".best-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    net.whisper.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    (tmp / "eval_results.json").write_text(json.dumps({"step": step, **scores}, indent=2))
    old = out / ".best-old"
    shutil.rmtree(old, ignore_errors=True)
    if (out / "best").exists():
        os.replace(out / "best", old)
    os.replace(tmp, out / "best")
    shutil.rmtree(old, ignore_errors=True)


def _save_checkpoint(accelerator, out: Path, state: dict, keep: int = 2) -> None:
    target = out / f"checkpoint-{state['step']}"
    tmp = out / f".tmp-checkpoint-{state['step']}"
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        for old in _checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def _plot_curves(history: list[dict], out: Path) -> None:
    from ..plots import curves

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    cer = [(h["step"], h["eval_cer"]) for h in history if "eval_cer" in h]
    series = {"train loss": ([s for s, _ in loss], [v for _, v in loss])}
    curves(series, out / "loss_curve.png", title="Training loss", ylabel="loss")
    if cer:
        curves({"validation CER": ([s for s, _ in cer], [v for _, v in cer])}, out / "cer_curve.png",
               title="Validation CER", ylabel="CER")


__all__ = ["WhisperTrainingArguments", "train", "DataError", "ModelError"]
