"""E2E training memory and throughput: this project's multitask step (one encoder pass shared by both tasks,
one backward, gradient checkpointing) against the paper's scheme (the batch duplicated per task, a forward
and a backward pass per task, no checkpointing), same model, same clips, same script.

    python -m benchmarks.e2e_memory --shapes xlsr-mbart --bf16 --batches 1,2,4,8,16,32   # one GPU
    python -m benchmarks.e2e_memory --shapes tiny --batches 2,4                          # CPU step time

Goal: per-device batch >= 16 where the paper ran 1; >= 1.5x samples/s at equal memory. The
``xlsr-mbart`` shapes are facebook/wav2vec2-xls-r-300m + facebook/mbart-large-50 (~0.6B parameters),
randomly initialised from configs (no download). Clips are 2–10 s of noise with 12 label tokens per second.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


from benchmarks._common import write_result

SHAPES = {
    "xlsr-mbart": dict(enc=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                                conv_dim=(512,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16),
                       dec=dict(d_model=1024, decoder_layers=12, decoder_attention_heads=16, decoder_ffn_dim=4096,
                                vocab_size=250056, max_position_embeddings=1024)),
    "tiny": dict(enc=dict(hidden_size=96, num_hidden_layers=2, num_attention_heads=4, intermediate_size=192,
                          conv_dim=(64,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
                 dec=dict(d_model=64, decoder_layers=2, decoder_attention_heads=4, decoder_ffn_dim=128,
                          vocab_size=1000, max_position_embeddings=256)),
}


def build(shapes: str):
    from transformers import MBartConfig, MBartForCausalLM, SpeechEncoderDecoderModel, Wav2Vec2Config, Wav2Vec2Model

    s = SHAPES[shapes]
    enc = Wav2Vec2Config(**s["enc"], do_stable_layer_norm=True, feat_extract_norm="layer", add_adapter=True,
                         num_adapter_layers=3, adapter_stride=2, layerdrop=0.0, mask_time_prob=0.05,
                         mask_time_length=2)
    # num_hidden_layers of an MBartConfig is its encoder_layers, and the KV cache is sized by it
    dec = MBartConfig(**s["dec"], encoder_layers=s["dec"]["decoder_layers"], is_decoder=True, add_cross_attention=True, pad_token_id=1,
                      eos_token_id=2, bos_token_id=0, decoder_start_token_id=2)
    model = SpeechEncoderDecoderModel(encoder=Wav2Vec2Model(enc), decoder=MBartForCausalLM(dec))
    model.config.decoder_start_token_id, model.config.pad_token_id = 2, 1
    model.encoder.freeze_feature_encoder()
    return model


def make_batch(batch: int, vocab: int, rng, device):
    import torch

    secs = rng.uniform(2, 10, size=batch)
    n = int(secs.max() * 16000)
    values = torch.zeros(batch, n)
    mask = torch.zeros(batch, n, dtype=torch.long)
    for i, s in enumerate(secs):
        k = int(s * 16000)
        values[i, :k] = torch.from_numpy(rng.standard_normal(k).astype(np.float32) * 0.1)
        mask[i, :k] = 1
    width = int(secs.max() * 12) + 4
    dec = torch.from_numpy(rng.integers(5, vocab, size=(2 * batch, width)))
    labels = dec.roll(-1, dims=1)
    return {k: v.to(device) for k, v in dict(input_values=values, attention_mask=mask, decoder_input_ids=dec,
                                              decoder_attention_mask=torch.ones_like(dec), labels=labels).items()}


def run(scheme: str, shapes: str, batch: int, steps: int, bf16: bool, device: str) -> dict:
    import torch

    from modeling.e2e.model import DuplicatedBatchE2E, MultitaskE2E
    from modeling.loading import enable_checkpointing

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with torch.device(device):  # initialised where it runs: 0.6 B parameters take minutes to initialise on a CPU
        model = build(shapes).to(device).train()  # .to: wav2vec2 makes masked_spec_embed with torch.Tensor(n)
    params = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    vocab = model.config.decoder.vocab_size
    if scheme == "ours":
        enable_checkpointing(model)
        model.config.decoder.use_cache = False
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    rng = np.random.default_rng(0)
    ctx = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)
    try:
        times = []
        for step in range(steps + 2):  # two warm-up steps
            b = make_batch(batch, vocab, rng, device)
            t0 = time.perf_counter()
            with ctx:
                if scheme == "ours":
                    loss, _ = MultitaskE2E(model)(**b)
                    loss.backward()
                else:
                    DuplicatedBatchE2E(model).backward_each(**b, backward=lambda l: l.backward())
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        return {"scheme": scheme, "batch": batch, "ok": True, "parameters_millions": params, "samples_per_second": round(batch * len(times) / sum(times), 3),
                "step_seconds": round(float(np.mean(times)), 4), "peak_memory_gib": round(peak, 2) if peak else None}
    except torch.OutOfMemoryError:
        return {"scheme": scheme, "batch": batch, "ok": False, "error": "out of memory"}
    finally:
        del model, opt
        if device == "cuda":
            torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", choices=sorted(SHAPES), default="tiny")
    ap.add_argument("--batches", default="2,4")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for scheme in ("ours", "paper"):
            r = run(scheme, args.shapes, batch, args.steps, args.bf16, device)
            print(r, flush=True)
            runs.append(r)
    ok = {(r["scheme"], r["batch"]): r for r in runs if r["ok"]}
    paper_max = max([b for s, b in ok if s == "paper"], default=None)
    ours_max = max([b for s, b in ok if s == "ours"], default=None)
    speedups = {b: round(ok[("ours", b)]["samples_per_second"] / ok[("paper", b)]["samples_per_second"], 3)
                for s, b in ok if s == "ours" and ("paper", b) in ok}
    write_result(f"e2e_memory_{args.shapes}", {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "shapes": args.shapes,
        "parameters_millions": next((r["parameters_millions"] for r in runs if r["ok"]), None),
        "bf16": args.bf16, "runs": runs, "largest_batch": {"ours": ours_max, "paper": paper_max},
        "speedup_at_equal_batch": speedups,
        "goal": {"per_device_batch": 16, "speedup_at_equal_memory": 1.5},
    })


if __name__ == "__main__":
    main()
