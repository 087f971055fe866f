"""Training past one process, in a real 2-rank gloo group on this CPU (``torchrun``, as ``accelerate`` runs DDP):
the learning rate follows the schedule at every step, the loss matches one process at the same global batch,
evaluation is split across ranks and gathered once, ``best/`` and ``checkpoint-N/`` load in one process, a
resumed run continues the same curve, and a time budget stops every rank at the same step. Tiny models, a few
steps: what is checked is the bookkeeping, not quality."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, _free_port

pytestmark = pytest.mark.slow

COMMON = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1", "--warmup_steps", "2",
          "--learning_rate", "1e-3", "--max_eval_samples", "6", "--max_train_samples", "24", "--report_to", "none",
          "--progress", "false", "--seed", "3"]
FAMILY = {
    "whisper": ["--model_name_or_path", "scratch", "--scratch_d_model", "64", "--scratch_encoder_layers", "1",
                "--scratch_decoder_layers", "1", "--scratch_vocab_size", "300", "--input_seconds", "8",
                "--timestamp_fraction", "0", "--ct2_quantization", "none", "--ctc_weight", "0.3"],
    "e2e": ["--encoder_name_or_path", "scratch", "--scratch_vocab_size", "300", "--max_seconds", "8",
            "--layerdrop", "0", "--mask_time_prob", "0"],
    "mt": ["--model_name_or_path", "scratch", "--scratch_vocab_size", "300", "--scratch_d_model", "32"],
}


def train(family: str, out: Path, dataset: Path, processes: int, per_device: int, *extra: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
           "--master_port", str(_free_port()), "-m", f"modeling.{family}.train", "--output_dir", str(out),
           "--dataset", str(dataset), "--dataset_config", "prelabeled", "--per_device_train_batch_size",
           str(per_device), *COMMON, *FAMILY[family], *extra]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)


def results(out: Path) -> dict:
    return json.loads((out / "train_results.json").read_text())


def losses(history: list[dict]) -> dict[int, float]:
    return {h["step"]: h["loss"] for h in history if "loss" in h}


def test_whisper_on_two_ranks_matches_one_process_and_resumes(small_export, tmp_path):
    from modeling.trainer import lr_lambda

    two, one = tmp_path / "two", tmp_path / "one"
    proc = train("whisper", two, small_export, 2, 2, "--dataloader_num_workers", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results(two)
    assert run["processes"] == 2 and run["steps_per_rank"] == [4, 4]
    for h in (h for h in run["history"] if "lr" in h):  # one update per step, whatever the number of processes
        assert h["lr"] == pytest.approx(1e-3 * lr_lambda(2, 4)(h["step"] - 1), rel=1e-6), h
    evals = [h for h in run["history"] if "eval_cer" in h]
    assert [h["step"] for h in evals] == [2, 4]
    for h in evals:  # the validation clips split between the ranks, gathered once, scored on all of them
        assert sum(h["eval_rows_per_rank"]) == h["eval_samples"] and min(h["eval_rows_per_rank"]) >= 1
        assert max(h["eval_rows_per_rank"]) - min(h["eval_rows_per_rank"]) <= 1

    proc = train("whisper", one, small_export, 1, 4)  # the same global batches on one process
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = losses(results(one)["history"])
    for step, loss in losses(run["history"]).items():  # DDP averages the ranks' token means: close, not equal
        assert loss == pytest.approx(single[step], rel=0.05), (step, loss, single[step])

    from transformers import WhisperForConditionalGeneration

    assert WhisperForConditionalGeneration.from_pretrained(two / "best").config.d_model == 64
    assert {p.name for p in two.glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-4"}
    assert (two / "checkpoint-4" / "trainer_state.json").exists()

    first = losses(run["history"])
    shutil.rmtree(two / "checkpoint-4")
    proc = train("whisper", two, small_export, 2, 2)  # resumes from checkpoint-2 on two ranks
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from checkpoint-2 (step 2)" in proc.stdout + proc.stderr
    again = losses(results(two)["history"])
    for step in (3, 4):
        assert again[step] == pytest.approx(first[step], abs=1e-3), (step, again[step], first[step])


def test_e2e_on_two_ranks_matches_one_process(small_export, tmp_path):
    proc = train("e2e", tmp_path / "two", small_export, 2, 2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results(tmp_path / "two")
    assert run["steps_per_rank"] == [4, 4] and (tmp_path / "two" / "best" / "config.json").exists()
    proc = train("e2e", tmp_path / "one", small_export, 1, 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = losses(results(tmp_path / "one")["history"])
    for step, loss in losses(run["history"]).items():
        assert loss == pytest.approx(single[step], rel=0.05), (step, loss, single[step])


def test_mt_time_budget_stops_every_rank_at_the_same_step_and_bad_world_sizes_fail(small_export, tmp_path):
    proc = train("mt", tmp_path / "budget", small_export, 2, 2, "--max_steps", "100000",
                 "--max_train_minutes", "0.05", "--eval_steps", "100000", "--save_steps", "100000")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = results(tmp_path / "budget")
    assert len(set(run["steps_per_rank"])) == 1 and 0 < run["steps"] < 100000
    assert "time budget of 0.05 min reached" in proc.stdout + proc.stderr
    # each rank says why in one line before the first step (torchrun then reports the ranks' exit codes)
    proc = train("mt", tmp_path / "few", small_export, 2, 2, "--max_train_samples", "1")
    assert proc.returncode != 0 and "1 training samples for 2 processes; every process needs at least one" in proc.stderr
    proc = train("mt", tmp_path / "odd", small_export, 2, 2, "--total_train_batch_size", "5")
    assert proc.returncode != 0 and "--total_train_batch_size 5: not divisible by 2 processes" in proc.stderr
