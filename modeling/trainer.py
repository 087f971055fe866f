"""The accelerate training loop every model family shares (Whisper, E2E, MT): a DataLoader over the dataset with
decoding in worker processes and length-grouped batches, gradient accumulation, mixed precision, exact resume
from ``checkpoint-N/`` (also from the Hub), ``best/`` kept by a validation metric, a time budget, trackers
(TensorBoard by default), curves, the card and the push.

The same loop runs on one process or many (``torchrun`` / ``accelerate launch``: DDP; FSDP and DeepSpeed on GPUs,
configs in ``scripts/accelerate/``) and means the same thing on each:

- a global batch is ``per_device_train_batch_size`` × processes samples of similar length, the same batches a
  single process with the larger per-device size would see; each rank takes its share;
- the learning rate follows the schedule per optimizer step, whatever the number of processes (the scheduler is
  stepped here, once per update, not through ``accelerator.prepare``, which would step it once per process);
- evaluation is split across ranks and gathered once; ``best/`` is saved from the full state dict (which FSDP
  assembles on every rank); the time budget stops every rank at the same step.

A family plugs in through :class:`TrainingTask`: how to build its model, batch samples, predict and score, save.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
from accelerate.utils import DistributedType
from tqdm.auto import tqdm

from .cards import CardSpec, hub_repo_id, render_card
from .data import (DataError, Decoded, RankBatches, Sample, SplitData, StreamBatches, collate_with, epoch_batches,
                   load_split, load_stream)
from .text_tokenizer import check_encodable


@dataclass
class TrainingArguments:
    output_dir: str = field(metadata={"help": "Where checkpoints, best/ and the logs go."})
    dataset: str = field(metadata={"help": "Hub dataset repo id or a local `vecs export` folder."})
    dataset_hub_id: Optional[str] = field(default=None, metadata={
        "help": "The Hub id of the dataset when --dataset is a local copy of it (named in the model card)."})
    dataset_config: str = "verified"
    train_split: str = "train"
    eval_split: str = "validation"
    streaming: Optional[bool] = field(default=None, metadata={
        "help": "Stream the training split (default: yes for a Hub repo, no for a local export); needs --max_steps."})
    stream_buffer: int = field(default=1000, metadata={"help": "Streaming: samples in the shuffle buffer."})
    stream_open_shards: int = field(default=2, metadata={
        "help": "Streaming: Parquet shards read at once to fill the buffer (each holds a row group of audio in "
                "memory: more mixes better, costs ~100 MB each)."})
    dataloader_num_workers: int = field(default=0, metadata={
        "help": "Processes that decode audio and build batches beside training (0: in the training process)."})
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    per_device_train_batch_size: int = 16
    total_train_batch_size: Optional[int] = field(default=None, metadata={
        "help": "Samples per optimizer step over all processes; sets the per-device size (must divide evenly)."})
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    warmup_steps: int = 50
    lr_scheduler_type: str = field(default="linear", metadata={
        "help": "linear or cosine: the decay after warmup, to 0 at the end of the schedule."})
    max_steps: int = 0
    num_train_epochs: float = field(default=3.0, metadata={
        "help": "Length of the schedule, unless --max_steps or --max_train_minutes (then the budget sets it) is given."})
    eval_steps: int = 200
    save_steps: int = 200
    logging_steps: int = 10
    max_eval_samples: int = 200
    max_train_samples: Optional[int] = None
    max_train_minutes: Optional[float] = field(default=None, metadata={
        "help": "Stop (evaluate, save, push) once this much wall time has passed in this run. Without --max_steps "
                "the budget is the schedule: its length is re-estimated from the measured step time as it runs."})
    mixed_precision: str = field(default="no", metadata={"help": "no, bf16 or fp16."})
    gradient_checkpointing: bool = False
    seed: int = 42
    resume: bool = True
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard, wandb or none (offline by default)."})
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None
    hub_private: bool = False
    hub_strategy: str = field(default="end", metadata={
        "help": "end: push best/ when training ends; every_save: also push each checkpoint (last-checkpoint/)."})
    resume_from_hub: bool = field(default=False, metadata={
        "help": "With no local checkpoint, start from the last-checkpoint/ pushed to --hub_model_id."})
    progress: bool = True


class TrainingTask:
    """A model family as the loop sees it. ``setup`` returns a module whose ``forward(**batch)`` returns
    ``(loss, {name: detached tensor})``; ``predict`` turns samples into rows that ``score`` reduces to metrics
    including ``metric`` (lower is better) — split so that each rank predicts its share and one gather suffices.
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

    def predict(self, net: torch.nn.Module, data: SplitData) -> list[dict]:
        raise NotImplementedError

    def score(self, rows: list[dict]) -> dict:
        raise NotImplementedError

    def evaluate(self, net: torch.nn.Module, data: SplitData) -> dict:
        """``predict`` and ``score`` in one process (the loop splits them across ranks)."""
        return self.score(self.predict(net, data))

    def save(self, net: torch.nn.Module, folder: Path, state_dict: dict | None = None) -> None:
        """``best/``: the family's own model and processor; ``state_dict`` is the full one (keys of ``net``) when
        training sharded it (FSDP)."""
        raise NotImplementedError

    def text_tokenizer(self):
        """The tokenizer that encodes the ``need`` texts, when it can meet characters it does not know (checked
        before the first step); ``None``: it encodes any text (byte-level)."""
        return None

    def finalize(self, folder: Path) -> None:
        """Called once on ``best/`` before its card is drawn and it is pushed (e.g. to add an inference export)."""

    def render_card(self, folder: Path, summary: dict, *, metrics: dict | None = None, split: str | None = None):
        """``folder/README.md`` from the family's card template, with the run's arguments and scores."""
        if self.card is not None:
            return render_card(self.card, folder, args=self.args, summary=summary, metrics=metrics, split=split)


def inner_state_dict(state_dict: dict | None, prefix: str) -> dict | None:
    """The wrapped model's part of a wrapper's state dict (``whisper.…`` → ``…``)."""
    if state_dict is None:
        return None
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(re.findall(r"\d+", p.name)[-1]))


SCHEDULES = ("linear", "cosine")


def lr_lambda(warmup: int, total: int, kind: str = "linear"):
    """Linear warmup, then a linear or cosine decay to 0 at ``total`` optimizer steps."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        left = max(0.0, (total - step) / max(1, total - warmup))
        return left if kind == "linear" else 0.5 * (1 - math.cos(math.pi * left))
    return f


def _all_agree(accelerator, flag: bool) -> bool:
    """True when any process says so: every rank stops at the same step (or DDP would hang)."""
    if accelerator.num_processes == 1:
        return flag
    t = torch.tensor([int(flag)], device=accelerator.device)
    return bool(accelerator.reduce(t, reduction="sum").item())


def fsdp_wrap_classes(model: torch.nn.Module, configured: list[str] | None) -> list[str]:
    """The layer classes FSDP wraps: the accelerate config's, each checked against the model (a config written
    for another family fails here, in one line), or the model's own ``_no_split_modules``."""
    present = {type(m).__name__ for m in model.modules()}
    if configured:
        missing = [c for c in configured if c not in present]
        if missing:
            own = sorted(c for c in present if c.endswith("Layer"))
            raise DataError(f"the FSDP config wraps {', '.join(missing)}, which this model does not have "
                            f"(its layers: {', '.join(own) or 'none'}); remove fsdp_transformer_layer_cls_to_wrap "
                            f"to use the model's own")
        return list(configured)
    own = [c for m in model.modules() for c in (getattr(m, "_no_split_modules", None) or [])]
    return sorted({c for c in own if c in present})


def check_fsdp_loading(model: torch.nn.Module, ram_efficient: bool) -> None:
    """accelerate's RAM-efficient FSDP2 loading broadcasts parameters only and stops at a persistent buffer
    (huggingface/accelerate#3898: "'Tensor' object has no attribute 'device_mesh'"), e.g. mBART's
    ``final_logits_bias``: say so before the first step, with the setting that avoids it."""
    if not ram_efficient:
        return
    buffers = [f"{name}.{b}" if name else b for name, mod in model.named_modules()
               for b, t in mod._buffers.items() if t is not None and b not in mod._non_persistent_buffers_set]
    if buffers:
        raise DataError(f"fsdp_cpu_ram_efficient_loading: true cannot load this model's buffers "
                        f"({', '.join(buffers[:3])}) in accelerate's FSDP2; set it to false in the accelerate config")


@contextmanager
def gathered(model: torch.nn.Module):
    """The model with its own parameters whole. FSDP2 keeps the root module's parameters (embeddings, convolutions,
    norms outside the wrapped layers) sharded between forwards; prediction calls submodules directly (language
    detection, ``generate``), which would meet a sharded tensor. The wrapped layers gather theirs as they run."""
    from torch.distributed.fsdp import FSDPModule

    if not isinstance(model, FSDPModule):
        yield model
        return
    model.unshard()
    try:
        yield model
    finally:
        model.reshard()


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
        args = self.args
        self.out = Path(args.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        trackers = None if args.report_to in ("none", "", None) else args.report_to
        if trackers == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise DataError("--report_to wandb: wandb is not installed (pip install wandb), or use tensorboard")
        self.accelerator = Accelerator(mixed_precision=args.mixed_precision, log_with=trackers,
                                       project_dir=str(self.out), gradient_accumulation_steps=args.gradient_accumulation_steps)
        set_seed(args.seed)
        self.state = TrainState()
        self.samples_seen, self.train_seconds, self.skipped = 0, 0.0, 0
        self.running: list[float] = []
        local = Path(args.dataset).exists() or args.dataset.startswith((".", "/", "~")) or args.dataset.count("/") > 1
        self.streaming = args.streaming if args.streaming is not None else not local

    # -- before the first step -----------------------------------------------------------------------------
    def _batch_size(self) -> int:
        args, n = self.args, self.accelerator.num_processes
        if args.total_train_batch_size:
            per_step = n * args.gradient_accumulation_steps
            if args.total_train_batch_size % per_step:
                raise DataError(f"--total_train_batch_size {args.total_train_batch_size}: not divisible by {n} "
                                f"processes × {args.gradient_accumulation_steps} accumulation steps")
            return args.total_train_batch_size // per_step
        return args.per_device_train_batch_size

    def prepare(self) -> None:
        """Everything that can be wrong with the data or the model fails here, before the first step."""
        args, task, acc = self.args, self.task, self.accelerator
        self.per_device = self._batch_size()
        if self.streaming:
            self.stream = load_stream(args.dataset, args.dataset_config, args.train_split, need=task.need,
                                      max_seconds=task.max_seconds(), rank=acc.process_index,
                                      world_size=acc.num_processes, seed=args.seed, buffer=args.stream_buffer,
                                      open_shards=args.stream_open_shards)
            if not args.max_steps:
                raise DataError(f"{args.dataset}: a streamed dataset has no length here; give --max_steps")
            # the model is built from a sample of the texts (a scratch tokenizer, a length bound)
            # texts and durations only: a Sample from the stream carries its audio bytes, and 5,000 of them kept for
            # the whole run were most of a streamed run's memory
            head = [Sample(s.id, s.transcript, s.translation, s.duration, lambda: None)
                    for _, s in zip(range(args.max_train_samples or 5000), self.stream)]
            if not head:
                raise DataError(f"{args.dataset} [{args.dataset_config}/{args.train_split}]: no usable samples")
            self.train_data = SplitData(args.train_split, head)  # a list of samples: only texts are read
        else:
            self.train_data = load_split(args.dataset, args.dataset_config, args.train_split, need=task.need,
                                         max_seconds=task.max_seconds(), limit=args.max_train_samples)
            if len(self.train_data.samples) < acc.num_processes:
                raise DataError(f"{args.dataset}: {len(self.train_data.samples)} training samples for "
                                f"{acc.num_processes} processes; every process needs at least one")
        self.eval_data = load_split(args.dataset, args.dataset_config, args.eval_split, need=task.need,
                                    max_seconds=task.max_seconds(), limit=args.max_eval_samples)
        # the main process builds the model (a scratch tokenizer, the weights) and saves it as base/; the others
        # load that, so every rank starts from the same files and none reads a half-written one
        with acc.main_process_first():
            net = task.setup(self.train_data, self.out)
        if task.text_tokenizer() is not None:
            check_encodable(task.text_tokenizer(), self.train_data.samples, task.need,
                            f"{args.dataset} [{args.dataset_config}/{args.train_split}]", warn=acc.print)
        if acc.distributed_type == DistributedType.FSDP:
            plugin = acc.state.fsdp_plugin
            plugin.transformer_cls_names_to_wrap = fsdp_wrap_classes(net, plugin.transformer_cls_names_to_wrap)
            check_fsdp_loading(net, bool(getattr(plugin, "cpu_ram_efficient_loading", False)))
        if acc.distributed_type == DistributedType.DEEPSPEED:  # DeepSpeed reads its micro batch from a dataloader
            acc.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = self.per_device
        if args.lr_scheduler_type not in SCHEDULES:
            raise DataError(f"--lr_scheduler_type {args.lr_scheduler_type!r}: expected one of {', '.join(SCHEDULES)}")
        optimizer = torch.optim.AdamW(task.parameters(net), lr=args.learning_rate, weight_decay=args.weight_decay)
        if self.streaming:
            self.total = args.max_steps
        else:
            batches = len(epoch_batches(self.train_data.durations, self.per_device, acc.num_processes, seed=args.seed))
            updates_per_epoch = max(1, batches // args.gradient_accumulation_steps)
            self.total = args.max_steps or int(math.ceil(args.num_train_epochs * updates_per_epoch))
        self.net, self.optimizer = acc.prepare(net, optimizer)
        # stepped here once per optimizer step: accelerate's wrapper would step it once per process
        # ``self.total`` is read at every step: a time budget re-sizes the schedule as step times are measured
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_lambda(args.warmup_steps, self.total, args.lr_scheduler_type)(step))
        acc.register_for_checkpointing(self.scheduler)
        self._resume()
        if args.report_to not in ("none", "", None):
            config = {k: v for k, v in asdict(args).items() if isinstance(v, (int, float, str, bool))}
            acc.init_trackers(f"vecs-{task.name}", config=config)

    def _resume(self) -> None:
        args, acc = self.args, self.accelerator
        found = checkpoints(self.out)
        if args.resume and not found and args.resume_from_hub and args.hub_model_id:
            from .hub import pull_checkpoint

            if acc.is_main_process:
                pull_checkpoint(args.hub_model_id, self.out)
            acc.wait_for_everyone()
            found = checkpoints(self.out)
        if args.resume and found:
            acc.load_state(str(found[-1]))
            self.state = TrainState.load(found[-1] / "trainer_state.json")
            acc.print(f"resumed from {found[-1].name} (step {self.state.step})")

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> dict:
        self.prepare()
        args = self.args
        t_start = time.perf_counter()
        self.deadline = t_start + 60 * args.max_train_minutes if args.max_train_minutes else None
        self.budget_schedule = bool(self.deadline and not args.max_steps)
        self.t_start, self.step_at_start = t_start, self.state.step
        if self.budget_schedule:  # until the first estimate, the budget (not the epoch count) bounds the run
            self.total = max(self.total, 10**9)
        # a time budget ends the run before the schedule does: show the budget left, not a step ETA
        self.bar = tqdm(total=None if self.deadline else self.total, initial=self.state.step,
                        desc=f"train {self.task.name}", disable=not (args.progress and self.accelerator.is_main_process))
        try:
            while self.state.step < self.total:
                self.train_epoch()
        finally:
            self.bar.close()
        summary = self.finish(time.perf_counter() - t_start)
        self.accelerator.end_training()  # trackers flushed, the process group torn down cleanly
        return summary

    def loader(self):
        """This epoch's DataLoader: decoding and batching in ``dataloader_num_workers`` processes."""
        from torch.utils.data import DataLoader

        args, acc, state = self.args, self.accelerator, self.state
        workers = args.dataloader_num_workers
        if workers:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizers in forked workers
        common = dict(num_workers=workers, collate_fn=collate_with(self.task.collate),
                      prefetch_factor=2 if workers else None, persistent_workers=False)
        if self.streaming:
            self.stream.set_epoch(state.epoch)
            return DataLoader(StreamBatches(self.stream, self.per_device, self.task.inputs, skip=state.batch_in_epoch),
                              batch_size=None, num_workers=workers, prefetch_factor=2 if workers else None,
                              collate_fn=collate_with(self.task.collate))
        batches = epoch_batches(self.train_data.durations, self.per_device, acc.num_processes,
                                seed=args.seed + state.epoch)
        sampler = RankBatches(batches, acc.process_index, acc.num_processes, start=state.batch_in_epoch)
        return DataLoader(Decoded(self.train_data.samples, self.task.inputs), batch_sampler=sampler, **common)

    def train_epoch(self) -> None:
        state = self.state
        for batch in self.loader():
            if state.step >= self.total:
                return
            state.batch_in_epoch += 1
            if self.train_step(batch):
                self.after_update()
        if state.step < self.total:
            state.epoch += 1
            state.batch_in_epoch = 0

    def train_step(self, batch: dict) -> bool:
        """Forward and backward on this rank's share of one batch; True when the optimizer stepped."""
        acc, task = self.accelerator, self.task
        t_batch = time.perf_counter()
        self.skipped += batch.pop("_skipped", 0)
        n = next((len(v) for v in batch.values() if hasattr(v, "__len__")), 0)
        with acc.accumulate(self.net):
            loss, self.parts = self.net(**{k: (v.to(acc.device) if torch.is_tensor(v) else v) for k, v in batch.items()})
            acc.backward(loss)
            if acc.sync_gradients:
                task.before_update(acc.unwrap_model(self.net), self.state.step)
                acc.clip_grad_norm_(self.net.parameters(), 1.0)
                self.lr_used = self.optimizer.param_groups[0]["lr"]
            self.optimizer.step()
            self.optimizer.zero_grad()
        if acc.sync_gradients and not acc.optimizer_step_was_skipped:
            self.scheduler.step()
        self.samples_seen += n
        # the mean over ranks (one scalar all-reduced), so the logged curve is the run's, not rank 0's; reading it
        # waits for the device, so the time below is the step's real time
        self.running.append(float(acc.reduce(loss.detach(), "mean")) if acc.num_processes > 1 else float(loss.detach()))
        self.train_seconds += time.perf_counter() - t_batch
        return acc.sync_gradients

    def after_update(self) -> None:
        """Count the step, then stop, log, evaluate and checkpoint as the schedule says."""
        args, state = self.args, self.state
        state.step += 1
        self.bar.update(1)
        step = state.step
        if self.budget_schedule and (step - self.step_at_start) % max(1, min(args.logging_steps, 25)) == 0:
            self.total = max(step + 1, self.budget_steps(step))
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

    def budget_steps(self, step: int) -> int:
        """The step at which the time budget will run out at the pace measured so far (evaluations included),
        the same on every rank (the mean of their clocks)."""
        elapsed = time.perf_counter() - self.t_start
        if self.accelerator.num_processes > 1:
            elapsed = float(self.accelerator.reduce(torch.tensor(elapsed, device=self.accelerator.device), "mean"))
        per_step = elapsed / max(1, step - self.step_at_start)
        return step + int(max(0.0, self.deadline - self.t_start - elapsed) / per_step)

    def log(self, step: int) -> None:
        # "lr" is the rate the step's update used: the schedule's value at step - 1
        entry = {"step": step, "loss": round(sum(self.running) / len(self.running), 4),
                 **{k: round(float(v), 4) for k, v in self.parts.items()}, "lr": self.lr_used}
        self.state.history.append(entry)
        self.accelerator.log({k: v for k, v in entry.items() if k != "step"}, step=step)
        budget = {"budget_left": f"{max(0.0, self.deadline - time.perf_counter()) / 60:.1f} min"} if self.deadline else {}
        self.bar.set_postfix(loss=entry["loss"], **budget)
        self.running = []

    def evaluate(self, step: int) -> None:
        """Each rank predicts its share of the validation samples; the rows are gathered once and scored the
        same way everywhere, so every rank agrees on ``best/``."""
        from accelerate.utils import gather_object

        task, acc, state = self.task, self.accelerator, self.state
        shard = self.eval_data.shard(acc.process_index, acc.num_processes)
        with gathered(acc.unwrap_model(self.net)) as model:
            rows = task.predict(model, shard)
        counts = gather_object([len(rows)]) if acc.num_processes > 1 else [len(rows)]
        rows = gather_object(rows) if acc.num_processes > 1 else rows
        scores = task.score(rows)
        state.history.append({"step": step, **{f"eval_{k}": v for k, v in scores.items() if isinstance(v, (int, float))},
                              "eval_rows_per_rank": counts})
        acc.log({f"eval/{k}": v for k, v in scores.items() if isinstance(v, (int, float))}, step=step)
        acc.print(f"step {step}: " + ", ".join(
            f"eval {k} {scores[k]:.4f}" for k in (task.metric, "wer", "loop_rate", "bleu") if k in scores))
        if state.best is None or scores[task.metric] < state.best:
            state.best, state.best_step = scores[task.metric], step
            self.save_best(scores, step)

    def save_best(self, scores: dict, step: int) -> None:
        """Replace ``best/`` as a whole: written beside it, then renamed. The state dict is gathered on every rank
        (FSDP holds it in shards), the folder written by the main process."""
        acc, out = self.accelerator, self.out
        state_dict = acc.get_state_dict(self.net) if acc.distributed_type == DistributedType.FSDP else None
        if not acc.is_main_process:
            return
        tmp = out / ".best-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.task.save(acc.unwrap_model(self.net), tmp, state_dict)
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
            if self.args.push_to_hub and self.args.hub_strategy == "every_save":
                from .hub import push_checkpoint

                push_checkpoint(target, hub_repo_id(self.args), private=self.args.hub_private)
        acc.wait_for_everyone()

    def finish(self, elapsed: float) -> dict:
        """The summary (also ``train_results.json``), curves, card and push."""
        from accelerate.utils import gather_object

        args, state, task, acc = self.args, self.state, self.task, self.accelerator
        steps = gather_object([state.step]) if acc.num_processes > 1 else [state.step]
        skipped = dict(getattr(self.train_data, "skipped", {}) or {})
        if self.skipped:
            skipped["undecodable_audio_replaced"] = self.skipped
        summary = {"steps": state.step, "best_step": state.best_step, f"best_eval_{task.metric}": state.best,
                   "train_samples": None if self.streaming else len(self.train_data.samples),
                   "train_hours": None if self.streaming else round(self.train_data.hours, 4),
                   "skipped": skipped, "eval_skipped": dict(self.eval_data.skipped),
                   "processes": acc.num_processes, "steps_per_rank": steps,
                   "per_device_train_batch_size": self.per_device,
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
        self.accelerator.wait_for_everyone()
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
