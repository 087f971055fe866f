"""Training data larger than RAM: peak memory of a training process on 10× the hours vs 1× (a local export read
through memory-mapped Arrow, and the same export streamed), and steps per second with the audio decoded in
``--dataloader_num_workers 2`` processes vs in the training process — side by side in one run.

    python -m benchmarks.train_data [--steps 40 --scale 10]

The 10× export repeats the 1× export's training shards (ten copies of every row: the same audio, 10× the rows
and the bytes) beside its own validation split. Memory is the whole process tree's (workers included), sampled
every 0.2 s: resident set (RSS) and its anonymous part (RssAnon — what the process allocated; RSS also counts
pages of the memory-mapped dataset that were read, which the kernel drops under pressure).
Goals: peak RSS at 10× ≤ 1.2× the 1× figure; data loading off the critical path (workers ≥ 1.0× without).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks._common import RESULTS, write_result
from benchmarks.whisper_cpu import export_folder

ARGS = ["--model_name_or_path", "scratch", "--scratch_d_model", "128", "--scratch_encoder_layers", "2",
        "--scratch_decoder_layers", "2", "--input_seconds", "8", "--ctc_weight", "0.3", "--learning_rate", "1e-3",
        "--warmup_steps", "5", "--per_device_train_batch_size", "8", "--max_eval_samples", "8",
        "--report_to", "none", "--progress", "false", "--ct2_quantization", "none", "--timestamp_fraction", "0"]


def scaled(export: Path, scale: int) -> Path:
    """A copy of ``export`` whose training split holds ``scale`` copies of every shard (links: no disk cost)."""
    out = RESULTS / "train_data" / f"{export.parent.name}-x{scale}"
    if (out / "README.md").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(export, out, symlinks=False, ignore=shutil.ignore_patterns("train-*.parquet"))
    for config in (export / "data").iterdir():
        for shard in config.glob("train-*.parquet"):
            for k in range(scale):
                os.link(shard, out / "data" / config.name / shard.name.replace("train-", f"train-c{k:02d}-"))
    return out


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, RssAnon) in bytes over a process and its children."""
    import psutil

    rss = anon = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    for p in procs:
        try:
            status = Path(f"/proc/{p.pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        anon += int(fields.get("RssAnon", "0 kB").split()[0]) * 1024
    return rss, anon


def run(dataset: Path, out: Path, steps: int, *extra: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "modeling.whisper.train", "--output_dir", str(out), "--dataset", str(dataset),
           "--dataset_config", "prelabeled", "--max_steps", str(steps), "--eval_steps", str(steps), "--save_steps",
           str(steps), *ARGS, *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            rss, anon = tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)
            time.sleep(0.2)
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    output = proc.communicate()[0]
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{output[-3000:]}")
    import json

    summary = json.loads((out / "train_results.json").read_text())
    return {"peak_rss_mib": round(peak[0] / 2**20, 1), "peak_rss_anon_mib": round(peak[1] / 2**20, 1),
            "wall_s": round(time.perf_counter() - t0, 1), "steps": summary["steps"],
            "train_samples_per_second": summary["train_samples_per_second"],
            "train_samples": summary["train_samples"], "train_hours": summary["train_hours"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--scale", type=int, default=10)
    args = ap.parse_args()
    base = export_folder(8, 16.0, 5)
    big = scaled(base, args.scale)
    work = RESULTS / "train_data" / "runs"
    rows = {}
    for name, dataset, extra in (("local 1x", base, ()), (f"local {args.scale}x", big, ()),
                                 ("stream 1x", base, ("--streaming", "true")),
                                 (f"stream {args.scale}x", big, ("--streaming", "true")),
                                 ("local 1x, 2 workers", base, ("--dataloader_num_workers", "2"))):
        rows[name] = run(dataset, work / name.replace(" ", "_").replace(",", ""), args.steps, *extra)
        print(name, rows[name], flush=True)
    ratio = lambda a, b, k: round(rows[a][k] / rows[b][k], 3)  # noqa: E731
    write_result("train_data", {
        "steps": args.steps, "scale": args.scale, "runs": rows,
        "local_rss_ratio": ratio(f"local {args.scale}x", "local 1x", "peak_rss_mib"),
        "local_rss_anon_ratio": ratio(f"local {args.scale}x", "local 1x", "peak_rss_anon_mib"),
        "stream_rss_ratio": ratio(f"stream {args.scale}x", "stream 1x", "peak_rss_mib"),
        "workers_speedup": ratio("local 1x, 2 workers", "local 1x", "train_samples_per_second"),
        "goal": {"rss_ratio": 1.2, "workers_speedup": 1.0},
    })


if __name__ == "__main__":
    main()
