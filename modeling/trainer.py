"""The accelerate training loop every model family shares (Whisper, E2E, MT): length-grouped batches,
gradient accumulation, mixed precision, exact resume from ``checkpoint-N/``, ``best/`` kept by a validation
metric, a time budget, curves, the card and the push.

``accelerate launch`` runs the same loop under DDP, FSDP or DeepSpeed (configs in ``scripts/accelerate/``).
A family plugs in through :class:`TrainingTask`: how to build its model, batch samples, score and save it.
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

import torch
from tqdm.auto import tqdm

from .data import SplitData, length_grouped_batches, load_split


@dataclass
class TrainingArguments:
    output_dir: str = field(metadata={"help": "Where checkpoints, best/ and the logs go."})
    dataset: str = field(metadata={"help": "Hub dataset repo id or a local `vecs export` folder."})
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
    seed: int = 42
    resume: bool = True
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None
    hub_private: bool = False
    progress: bool = True


class TrainingTask:
    """A model family as the loop sees it. ``setup`` returns a module whose ``forward(**batch)`` returns
    ``(loss, {name: detached tensor})``; ``evaluate`` returns scores including ``metric`` (lower is better)."""

    name = "model"
    metric = "cer"
    need: tuple[str, ...] = ("transcript",)

    def __init__(self, args) -> None:
        self.args = args

    def max_seconds(self) -> float | None:
        return None

    def setup(self, train_data: SplitData, out: Path) -> torch.nn.Module:
        raise NotImplementedError

    def collate(self, pairs: list) -> dict:
        raise NotImplementedError

    def inputs(self, sample):
        """What a sample contributes to a batch besides its labels: its decoded audio by default."""
        return sample.samples()

    def parameters(self, net: torch.nn.Module) -> list:
        """What the optimizer updates (a family that unfreezes parts later lists them here already)."""
        return [p for p in net.parameters() if p.requires_grad]

    def before_update(self, net: torch.nn.Module, step: int) -> None:
        """Called after the backward pass and before the optimizer step (e.g. to hold a part still for its
        first N steps by dropping its gradients: under DDP every rank still all-reduces the same tensors)."""

    def evaluate(self, net: torch.nn.Module, data: SplitData) -> dict:
        raise NotImplementedError

    def save(self, net: torch.nn.Module, folder: Path) -> None:
        raise NotImplementedError

    def card(self, folder: Path, summary: dict) -> None:
        pass


def checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(re.findall(r"\d+", p.name)[-1]))


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


def _all_agree(accelerator, flag: bool) -> bool:
    """True when any process says so: every rank stops at the same step (or DDP would hang)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([int(flag)], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item())


def run_training(task: TrainingTask) -> dict:
    """Train ``task``; returns the summary also written to ``output_dir/train_results.json``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    args = task.args
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              gradient_accumulation_steps=args.gradient_accumulation_steps)
    set_seed(args.seed)
    # Everything that can be wrong with the data or the model fails here, before the first step.
    train_data = load_split(args.dataset, args.dataset_config, args.train_split, need=task.need,
                            max_seconds=task.max_seconds(), limit=args.max_train_samples)
    eval_data = load_split(args.dataset, args.dataset_config, args.eval_split, need=task.need,
                           max_seconds=task.max_seconds(), limit=args.max_eval_samples)
    net = task.setup(train_data, out)
    optimizer = torch.optim.AdamW(task.parameters(net), lr=args.learning_rate,
                                  weight_decay=args.weight_decay)
    per_epoch = math.ceil(len(train_data.samples) / args.per_device_train_batch_size / accelerator.num_processes)
    updates_per_epoch = max(1, per_epoch // args.gradient_accumulation_steps)
    total = args.max_steps or int(math.ceil(args.num_train_epochs * updates_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(args.warmup_steps, total))
    net, optimizer, scheduler = accelerator.prepare(net, optimizer, scheduler)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best": None, "best_step": None, "history": []}
    found = checkpoints(out)
    if args.resume and found:
        accelerator.load_state(str(found[-1]))
        state = json.loads((found[-1] / "trainer_state.json").read_text())
        accelerator.print(f"resumed from {found[-1].name} (step {state['step']})")

    lengths = [s.duration for s in train_data.samples]
    t_start = time.perf_counter()
    deadline = t_start + 60 * args.max_train_minutes if args.max_train_minutes else None
    samples_seen, train_seconds = 0, 0.0  # training work only: evaluation and checkpoints excluded
    # a time budget ends the run before the schedule does: show the budget left, not a step ETA
    bar = tqdm(total=None if deadline else total, initial=state["step"], desc=f"train {task.name}",
               disable=not (args.progress and accelerator.is_main_process))
    running: list[float] = []
    while state["step"] < total:
        batches = list(length_grouped_batches(lengths, args.per_device_train_batch_size * accelerator.num_processes,
                                              seed=args.seed + state["epoch"]))
        for b_index in range(state["batch_in_epoch"], len(batches)):
            if state["step"] >= total:
                break
            t_batch = time.perf_counter()
            pairs = []
            for i in batches[b_index][accelerator.process_index::accelerator.num_processes]:
                s = train_data.samples[i]
                try:
                    pairs.append((s, task.inputs(s)))
                except Exception:
                    train_data.skipped["undecodable_audio"] += 1
            state["batch_in_epoch"] = b_index + 1
            if not pairs:
                continue
            batch = task.collate(pairs)
            with accelerator.accumulate(net):
                loss, parts = net(**{k: (v.to(accelerator.device) if torch.is_tensor(v) else v)
                                     for k, v in batch.items()})
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    task.before_update(accelerator.unwrap_model(net), state["step"])
                    accelerator.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            samples_seen += len(pairs)
            running.append(float(loss.detach()))  # waits for the device, so the time below is the step's real time
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
                entry = {"step": step, "loss": round(sum(running) / len(running), 4),
                         **{k: round(float(v), 4) for k, v in parts.items()}, "lr": scheduler.get_last_lr()[0]}
                state["history"].append(entry)
                budget = {"budget_left": f"{max(0.0, deadline - time.perf_counter()) / 60:.1f} min"} if deadline else {}
                bar.set_postfix(loss=entry["loss"], **budget)
                running = []
            if step % args.eval_steps == 0 or step == total:
                scores = task.evaluate(accelerator.unwrap_model(net), eval_data)
                state["history"].append({"step": step, **{f"eval_{k}": v for k, v in scores.items()
                                                          if isinstance(v, (int, float))}})
                accelerator.print(f"step {step}: " + ", ".join(
                    f"eval {k} {scores[k]:.4f}" for k in (task.metric, "wer", "loop_rate", "bleu") if k in scores))
                if state["best"] is None or scores[task.metric] < state["best"]:
                    state["best"], state["best_step"] = scores[task.metric], step
                    if accelerator.is_main_process:
                        _save_best(task, accelerator.unwrap_model(net), out, scores, step)
            if step % args.save_steps == 0 or step == total:
                _save_checkpoint(accelerator, out, state)
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    bar.close()
    elapsed = time.perf_counter() - t_start
    summary = {"steps": state["step"], "best_step": state["best_step"], f"best_eval_{task.metric}": state["best"],
               "train_samples": len(train_data.samples), "train_hours": round(train_data.hours, 4),
               "skipped": dict(train_data.skipped), "eval_skipped": dict(eval_data.skipped),
               "train_seconds_this_run": round(elapsed, 1),
               "train_samples_per_second": round(samples_seen / train_seconds, 3) if train_seconds else None,
               "args": asdict(args)}
    if accelerator.is_main_process:
        (out / "train_results.json").write_text(json.dumps({**summary, "history": state["history"]}, indent=2))
        plot_curves(state["history"], out, task.metric)
        task.card(out / "best", summary)
        if args.push_to_hub:
            from .hub import push_model

            summary["hub_url"] = push_model(out / "best", args.hub_model_id or out.name, private=args.hub_private)
    return summary


def _save_best(task: TrainingTask, net, out: Path, scores: dict, step: int) -> None:
    """Replace ``best/`` as a whole: written beside it, then renamed."""
    tmp = out / ".best-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    task.save(net, tmp)
    (tmp / "eval_results.json").write_text(json.dumps({"step": step, **scores}, indent=2, ensure_ascii=False))
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
        for old in checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def plot_curves(history: list[dict], out: Path, metric: str) -> None:
    from dataset_builder.foundation.plots import curves

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    curves({"train loss": ([s for s, _ in loss], [v for _, v in loss])}, out / "loss_curve.png",
           title="Training loss", ylabel="loss")
    evals = [(h["step"], h[f"eval_{metric}"]) for h in history if f"eval_{metric}" in h]
    if evals:
        curves({f"validation {metric.upper()}": ([s for s, _ in evals], [v for _, v in evals])},
               out / f"{metric}_curve.png", title=f"Validation {metric.upper()}", ylabel=metric.upper())


def script_main(args_cls, train_fn, argv=None) -> int:
    """The training scripts' entry point: dataclass arguments from the command line, one-line errors."""
    import sys

    from transformers import HfArgumentParser

    from .data import DataError
    from .loading import ModelError

    (args,) = HfArgumentParser(args_cls).parse_args_into_dataclasses(args=argv)
    try:
        summary = train_fn(args)
    except (DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    best = {k: v for k, v in summary.items() if k.startswith("best_eval_")}
    print(f"best {', '.join(f'{k[10:]} {v}' for k, v in best.items())} at step {summary['best_step']}; "
          f"model in {Path(args.output_dir) / 'best'}")
    return 0
