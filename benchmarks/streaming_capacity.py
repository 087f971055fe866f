"""How many real-time streams one machine sustains: N visitors' streams share one Whisper (as the Space shares one
model across visitors), each fed code-switched audio in real time, chunk by chunk, from its own thread — for each
backend on the same checkpoint, side by side: transformers (fp32 on a CPU, fp16 on a GPU) and CTranslate2 (int8
on a CPU, fp16 on a GPU).

    python -m benchmarks.streaming_capacity --shapes small --streams 1,2,4,8,16,32 --seconds 60   # a lent GPU
    python -m benchmarks.streaming_capacity --model runs/whisper/best --streams 1,2,4,8 --seconds 60   # CPU

A level is sustained when every stream keeps up with real time: 95% of its chunks, and its last, are processed
within ``--max-lag`` seconds of their audio arriving. Commit latency is reported per level too, but it is not the
criterion: LocalAgreement waits for a second hypothesis, so one stream alone already has a p95 near 3 s
(``benchmarks/streaming.py``); what more streams add is the lag. Levels stop at the first one not sustained.

A sustained level must also keep the p95 commit latency within ``--max-latency`` (3 s). Without ``--model`` the
weights are random with the chosen shapes (``small`` = openai/whisper-small's: no download); such a model does not
stop where speech does, so its decodes run to the length bound: a conservative figure for a trained model.
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from benchmarks._common import RESULTS, synthetic_corpus, write_result
from benchmarks.whisper_throughput import SHAPES, WORDS
from dataset_builder.foundation.config import SAMPLE_RATE


def checkpoint(args) -> str:
    """The checkpoint both backends run: ``--model``, or random weights with ``--shapes`` saved once."""
    if args.model:
        return args.model
    from modeling.whisper.model import build_offline

    folder = RESULTS / "streaming" / f"random-{args.shapes}"
    if not (folder / "config.json").exists():
        model, processor = build_offline(WORDS * 20, input_seconds=30.0, vocab_size=2000, **SHAPES[args.shapes])
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return str(folder)


def shared_runner(folder: str, backend: str, threads: int):
    """One transcriber for every stream of a level, on the GPU in half precision when there is one."""
    import torch

    from modeling.runtime import Runtime
    from modeling.whisper.ct2 import convert
    from modeling.whisper.decode import load_transcriber

    torch.set_num_threads(threads)
    if backend == "ct2":
        target = RESULTS / "streaming" / f"ct2-{Path(folder).parent.name}-{Path(folder).name}"
        if not (target / "model.bin").exists():
            convert(folder, target, quantization="float16")  # stored fp16; loads as int8 on a CPU
        return load_transcriber(str(target), runtime=Runtime(backend="ct2"))
    return load_transcriber(folder, runtime=Runtime(backend="transformers"))


def stream(runner, samples, chunk: float, barrier: threading.Barrier) -> dict:
    """One visitor: real-time feed through its own online processor; commit latencies and how far it fell behind."""
    from modeling.streaming.transcribe import online_processor, transcribe_stream

    clock = {"start": 0.0}
    proc = online_processor(runner, clock=lambda: time.perf_counter() - clock["start"])
    lags, fed = [], [0]
    insert, step = proc.insert_audio_chunk, proc.process_iter

    def counted_insert(audio):
        fed[0] += len(audio)
        insert(audio)

    def timed_step():
        out = step()
        lags.append(time.perf_counter() - clock["start"] - fed[0] / SAMPLE_RATE)  # done minus when that audio arrived
        return out
    proc.insert_audio_chunk, proc.process_iter = counted_insert, timed_step
    barrier.wait()
    clock["start"] = time.perf_counter()
    segments = transcribe_stream(samples, "", chunk=chunk, realtime=True, processor=proc)
    return {"latencies": [s.latency for s in segments], "lags": lags}


def run_level(runner, audio, n: int, chunk: float) -> dict:
    import numpy as np

    barrier, results, errors = threading.Barrier(n), [None] * n, []

    def worker(i: int) -> None:
        try:  # each visitor starts at a different place in the recording
            results[i] = stream(runner, np.roll(audio, -i * 7 * SAMPLE_RATE), chunk, barrier)
        except Exception as exc:  # noqa: BLE001 - reported with the level, the other threads still finish
            errors.append(f"stream {i}: {type(exc).__name__}: {exc}")
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{n} streams: {errors[0]}")
    lat = np.asarray([x for r in results for x in r["latencies"]])
    final_lags = [r["lags"][-1] for r in results]
    lag_p95 = [float(np.percentile(r["lags"], 95)) for r in results]
    p95 = float(np.percentile(lat, 95)) if len(lat) else None
    return {"streams": n, "wall_s": round(time.perf_counter() - t0, 1), "commits": int(len(lat)),
            "latency_median_s": round(float(np.median(lat)), 3) if len(lat) else None,
            "latency_p95_s": round(p95, 3) if p95 is not None else None,
            "final_lag_max_s": round(max(final_lags), 3), "lag_p95_worst_s": round(max(lag_p95), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--model", help="a trained Whisper folder instead of random weights with --shapes")
    ap.add_argument("--streams", default="1,2,4,8", help="comma-separated levels, ascending")
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per stream")
    ap.add_argument("--audio", help="a speech file to stream instead of a synthetic one (a machine without espeak-ng)")
    ap.add_argument("--chunk", type=float, default=0.5)
    ap.add_argument("--max-lag", type=float, default=1.0, help="seconds a stream may trail its audio")
    ap.add_argument("--max-latency", type=float, default=3.0, help="p95 commit latency a sustained level keeps")
    ap.add_argument("--threads", type=int, default=2, help="torch threads on CPU")
    ap.add_argument("--backends", default="transformers,ct2", help="compared side by side on the same checkpoint")
    args = ap.parse_args()
    try:
        levels = sorted({int(x) for x in args.streams.split(",")})
    except ValueError:
        raise SystemExit(f"--streams {args.streams!r}: expected comma-separated integers like 1,2,4") from None
    if not levels or levels[0] < 1:
        raise SystemExit(f"--streams {args.streams!r}: levels must be >= 1")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"transformers", "ct2"}:
        raise SystemExit(f"--backends {args.backends!r}: expected transformers and/or ct2")

    import torch

    from dataset_builder.foundation.audio import load_audio
    from dataset_builder.foundation.plots import curves

    if args.audio:
        audio = load_audio(args.audio, end=args.seconds)
    else:
        corpus = synthetic_corpus(1, max(1.0, args.seconds / 60), 21, channels=1)
        audio = load_audio(next(corpus.rglob("*.m4a")), end=args.seconds)
    folder = checkpoint(args)
    results, series = {}, {}
    for backend in backends:
        try:
            runner = shared_runner(folder, backend, args.threads)
        except Exception as exc:  # e.g. CTranslate2's CUDA 12 wheel on a machine with CUDA 13 only: recorded, not fatal
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(backend, results[backend], flush=True)
            continue
        rows = []
        for n in levels:
            row = run_level(runner, audio, n, args.chunk)
            row["sustained"] = max(row["final_lag_max_s"], row["lag_p95_worst_s"]) <= args.max_lag
            rows.append(row)
            print(backend, row, flush=True)
            if not row["sustained"]:
                break
        sustained = [r["streams"] for r in rows if r["sustained"] and (r["latency_p95_s"] or 0) <= args.max_latency]
        results[backend] = {"max_sustained_streams": max(sustained, default=0), "levels": rows,
                            "compute": getattr(getattr(runner, "whisper", None), "compute_type", None)
                            or str(next(runner.model.parameters()).dtype)}
        series[f"{backend}: worst stream's p95 lag"] = ([r["streams"] for r in rows], [r["lag_p95_worst_s"] for r in rows])
        series[f"{backend}: p95 commit latency"] = ([r["streams"] for r in rows], [r["latency_p95_s"] or 0 for r in rows])
        del runner
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    name = f"streaming_capacity_{'model' if args.model else args.shapes}_{'cpu' if device == 'cpu' else 'gpu'}"
    figure = curves(series, RESULTS / "streaming" / f"{name}.png", title=f"Concurrent real-time streams ({device})",
                    xlabel="streams", ylabel="seconds")
    counts = {b: r["max_sustained_streams"] for b, r in results.items() if "max_sustained_streams" in r}
    write_result(name, {
        "device": device, "shapes": None if args.model else args.shapes, "model": args.model,
        "audio_seconds_per_stream": round(len(audio) / SAMPLE_RATE, 1), "chunk_s": args.chunk,
        "max_lag_s": args.max_lag, "max_commit_latency_p95_s": args.max_latency, "backends": results,
        "max_sustained_streams": counts,
        "ct2_vs_transformers": round(counts["ct2"] / counts["transformers"], 2)
        if counts.get("transformers") and "ct2" in counts else None,
        "figure": str(figure),
    })


if __name__ == "__main__":
    main()
