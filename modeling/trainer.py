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

from .cards import CardSpec, hub_repo_id, render_card
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
    ``(loss, {name: detached tensor})``; ``evaluate`` returns scores including ``metric`` (lower is better).
    ``arguments`` is the family's dataclass of command-line options, ``card`` how its model card is drawn."""

    name = "model"
    metric = "cer"
    need: tuple[str, ...] = ("transcript",)
    arguments: type = TrainingArguments
    card: CardSpec | None = None

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

    def finalize(self, folder: Path) -> None:
        """Called once on ``best/`` before its card is drawn and it is pushed (e.g. to add an inference export)."""

    def save(self, net: torch.nn.Module, folder: Path) -> None:
        raise NotImplementedError

    def render_card(self, folder: Path, summary: dict, *, metrics: dict | None = None, split: str | None = None):
        """``folder/README.md`` from the family's card template, with the run's arguments and scores."""
        if self.card is not None:
            return render_card(self.card, folder, args=self.args, summary=summary, metrics=metrics, split=split)


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


@dataclass
class TrainState:
    """Where a run is: saved in every ``checkpoint-N/trainer_state.json`` so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    best_step: int | None = None
    history: list = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "TrainState":
        return cls(**json.loads(path.read_text()))


class Trainer:
    """One run of a :class:`TrainingTask`: data and model checked up front, then steps until the schedule or
    the time budget ends, evaluating and checkpointing on the way, and the card and push at the end."""

    def __init__(self, task: TrainingTask) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.task, self.args = task, task.args
        self.out = Path(self.args.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.accelerator = Accelerator(mixed_precision=self.args.mixed_precision,
                                       gradient_accumulation_steps=self.args.gradient_accumulation_steps)
        set_seed(self.args.seed)
        self.state = TrainState()
        self.samples_seen, self.train_seconds = 0, 0.0  # training work only: evaluation and checkpoints excluded
        self.running: list[float] = []

    def prepare(self) -> None:
        """Everything that can be wrong with the data or the model fails here, before the first step."""
        args, task, acc = self.args, self.task, self.accelerator
        self.train_data = load_split(args.dataset, args.dataset_config, args.train_split, need=task.need,
                                     max_seconds=task.max_seconds(), limit=args.max_train_samples)
        self.eval_data = load_split(args.dataset, args.dataset_config, args.eval_split, need=task.need,
                                    max_seconds=task.max_seconds(), limit=args.max_eval_samples)
        net = task.setup(self.train_data, self.out)
        optimizer = torch.optim.AdamW(task.parameters(net), lr=args.learning_rate, weight_decay=args.weight_decay)
        per_epoch = math.ceil(len(self.train_data.samples) / args.per_device_train_batch_size / acc.num_processes)
        updates_per_epoch = max(1, per_epoch // args.gradient_accumulation_steps)
        self.total = args.max_steps or int(math.ceil(args.num_train_epochs * updates_per_epoch))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(args.warmup_steps, self.total))
        self.net, self.optimizer, self.scheduler = acc.prepare(net, optimizer, scheduler)
        found = checkpoints(self.out)
        if args.resume and found:
            acc.load_state(str(found[-1]))
            self.state = TrainState.load(found[-1] / "trainer_state.json")
            acc.print(f"resumed from {found[-1].name} (step {self.state.step})")

    def run(self) -> dict:
        self.prepare()
        args = self.args
        t_start = time.perf_counter()
        self.deadline = t_start + 60 * args.max_train_minutes if args.max_train_minutes else None
        # a time budget ends the run before the schedule does: show the budget left, not a step ETA
        self.bar = tqdm(total=None if self.deadline else self.total, initial=self.state.step,
                        desc=f"train {self.task.name}", disable=not (args.progress and self.accelerator.is_main_process))
        while self.state.step < self.total:
            self.train_epoch()
        self.bar.close()
        return self.finish(time.perf_counter() - t_start)

    def epoch_batches(self) -> list[list[int]]:
        lengths = [s.duration for s in self.train_data.samples]
        return list(length_grouped_batches(lengths, self.args.per_device_train_batch_size * self.accelerator.num_processes,
                                           seed=self.args.seed + self.state.epoch))

    def train_epoch(self) -> None:
        acc, state = self.accelerator, self.state
        batches = self.epoch_batches()
        for b_index in range(state.batch_in_epoch, len(batches)):
            if state.step >= self.total:
                return
            state.batch_in_epoch = b_index + 1
            mine = batches[b_index][acc.process_index::acc.num_processes]
            if self.train_step(mine):
                self.after_update()
        state.epoch += 1
        state.batch_in_epoch = 0

    def train_step(self, indices: list[int]) -> bool:
        """Forward and backward on this rank's share of one batch; True when the optimizer stepped."""
        acc, task = self.accelerator, self.task
        t_batch = time.perf_counter()
        pairs = []
        for i in indices:
            s = self.train_data.samples[i]
            try:
                pairs.append((s, task.inputs(s)))
            except Exception:
                self.train_data.skipped["undecodable_audio"] += 1
        if not pairs:
            return False
        batch = task.collate(pairs)
        with acc.accumulate(self.net):
            loss, self.parts = self.net(**{k: (v.to(acc.device) if torch.is_tensor(v) else v) for k, v in batch.items()})
            acc.backward(loss)
            if acc.sync_gradients:
                task.before_update(acc.unwrap_model(self.net), self.state.step)
                acc.clip_grad_norm_(self.net.parameters(), 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        self.samples_seen += len(pairs)
        self.running.append(float(loss.detach()))  # waits for the device, so the time below is the step's real time
        self.train_seconds += time.perf_counter() - t_batch
        return acc.sync_gradients

    def after_update(self) -> None:
        """Count the step, then stop, log, evaluate and checkpoint as the schedule says."""
        args, state = self.args, self.state
        state.step += 1
        self.bar.update(1)
        step = state.step
        if self.deadline and step < self.total and _all_agree(self.accelerator, time.perf_counter() > self.deadline):
            self.accelerator.print(f"time budget of {args.max_train_minutes} min reached at step {step}")
            self.total = step  # this step becomes the last: logged, evaluated, saved
        last = step == self.total
        if step % args.logging_steps == 0 or last:
            self.log(step)
        if step % args.eval_steps == 0 or last:
            self.evaluate(step)
        if step % args.save_steps == 0 or last:
            self.save_checkpoint()

    def log(self, step: int) -> None:
        entry = {"step": step, "loss": round(sum(self.running) / len(self.running), 4),
                 **{k: round(float(v), 4) for k, v in self.parts.items()}, "lr": self.scheduler.get_last_lr()[0]}
        self.state.history.append(entry)
        budget = {"budget_left": f"{max(0.0, self.deadline - time.perf_counter()) / 60:.1f} min"} if self.deadline else {}
        self.bar.set_postfix(loss=entry["loss"], **budget)
        self.running = []

    def evaluate(self, step: int) -> None:
        task, acc, state = self.task, self.accelerator, self.state
        scores = task.evaluate(acc.unwrap_model(self.net), self.eval_data)
        state.history.append({"step": step, **{f"eval_{k}": v for k, v in scores.items() if isinstance(v, (int, float))}})
        acc.print(f"step {step}: " + ", ".join(
            f"eval {k} {scores[k]:.4f}" for k in (task.metric, "wer", "loop_rate", "bleu") if k in scores))
        if state.best is None or scores[task.metric] < state.best:
            state.best, state.best_step = scores[task.metric], step
            if acc.is_main_process:
                self.save_best(scores, step)

    def save_best(self, scores: dict, step: int) -> None:
        """Replace ``best/`` as a whole: written beside it, then renamed."""
        out = self.out
        tmp = out / ".best-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.task.save(self.accelerator.unwrap_model(self.net), tmp)
        (tmp / "eval_results.json").write_text(json.dumps({"step": step, **scores}, indent=2, ensure_ascii=False))
        old = out / ".best-old"
        shutil.rmtree(old, ignore_errors=True)
        if (out / "best").exists():
            os.replace(out / "best", old)
        os.replace(tmp, out / "best")
        shutil.rmtree(old, ignore_errors=True)

    def save_checkpoint(self, keep: int = 2) -> None:
        acc, out, step = self.accelerator, self.out, self.state.step
        target = out / f"checkpoint-{step}"
        tmp = out / f".tmp-checkpoint-{step}"
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        if acc.is_main_process:
            self.state.save(tmp / "trainer_state.json")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
            for old in checkpoints(out)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)

    def finish(self, elapsed: float) -> dict:
        """The summary (also ``train_results.json``), curves, card and push."""
        args, state, task = self.args, self.state, self.task
        summary = {"steps": state.step, "best_step": state.best_step, f"best_eval_{task.metric}": state.best,
                   "train_samples": len(self.train_data.samples), "train_hours": round(self.train_data.hours, 4),
                   "skipped": dict(self.train_data.skipped), "eval_skipped": dict(self.eval_data.skipped),
                   "train_seconds_this_run": round(elapsed, 1),
                   "train_samples_per_second": round(self.samples_seen / self.train_seconds, 3)
                   if self.train_seconds else None,
                   "args": asdict(args)}
        if self.accelerator.is_main_process:
            (self.out / "train_results.json").write_text(json.dumps({**summary, "history": state.history}, indent=2))
            plot_curves(state.history, self.out, task.metric)
            task.finalize(self.out / "best")
            task.render_card(self.out / "best", summary)
            if args.push_to_hub:
                from .hub import push_model

                summary["hub_url"] = push_model(self.out / "best", hub_repo_id(args), private=args.hub_private)
        return summary


def run_training(task: TrainingTask) -> dict:
    """Train ``task``; returns the summary also written to ``output_dir/train_results.json``."""
    return Trainer(task).run()


def plot_curves(history: list[dict], out: Path, metric: str) -> None:
    from dataset_builder.foundation.plots import curves

    loss = [(h["step"], h["loss"]) for h in history if "loss" in h]
    curves({"train loss": ([s for s, _ in loss], [v for _, v in loss])}, out / "loss_curve.png",
           title="Training loss", ylabel="loss")
    evals = [(h["step"], h[f"eval_{metric}"]) for h in history if f"eval_{metric}" in h]
    if evals:
        curves({f"validation {metric.upper()}": ([s for s, _ in evals], [v for _, v in evals])},
               out / f"{metric}_curve.png", title=f"Validation {metric.upper()}", ylabel=metric.upper())


def script_main(task_cls: type[TrainingTask], argv=None) -> int:
    """A family's command-line entry point (``vecs train NAME``, ``scripts/train_*.py``, ``python -m``):
    dataclass arguments from the command line, one-line errors."""
    import sys

    from transformers import HfArgumentParser

    from .data import DataError
    from .loading import ModelError

    (args,) = HfArgumentParser(task_cls.arguments).parse_args_into_dataclasses(args=argv)
    try:
        summary = run_training(task_cls(args))
    except (DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    best = {k: v for k, v in summary.items() if k.startswith("best_eval_")}
    print(f"best {', '.join(f'{k[10:]} {v}' for k, v in best.items())} at step {summary['best_step']}; "
          f"model in {Path(args.output_dir) / 'best'}")
    return 0
