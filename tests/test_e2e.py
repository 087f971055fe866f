"""E2E speech translation and the cascade, offline: one encoder pass shared by both tasks (the gradient is
the paper's two-pass gradient), training with resume and card, MT fine-tuning, and ``vecs evaluate --task st``
scoring E2E and both cascade modes side by side."""
from __future__ import annotations

import json

import numpy as np
import torch

from conftest import run_vecs
from modeling.data import Sample
from modeling.e2e.collate import E2ECollator
from modeling.e2e.model import DuplicatedBatchE2E, MultitaskE2E, build_offline, prompt_ids

TEXTS = ["mình có một meeting rất quan trọng với team", "tôi có một cuộc họp rất quan trọng với nhóm",
         "deadline là thứ sáu nha mọi người", "hạn chót là thứ sáu nha mọi người"] * 20

TINY = ["--encoder_name_or_path", "scratch", "--scratch_vocab_size", "300", "--per_device_train_batch_size", "2",
        "--learning_rate", "1e-3", "--max_eval_samples", "2", "--max_train_samples", "16", "--logging_steps", "1",
        "--warmup_steps", "1", "--max_seconds", "8", "--progress", "false"]


def _batch(seed: int = 0):
    model, fe, tok = build_offline(TEXTS, vocab_size=300)
    rng = np.random.default_rng(seed)
    pairs = [(Sample("a", TEXTS[0], TEXTS[1], 1.0, lambda: b""), rng.standard_normal(16000).astype(np.float32) * 0.1),
             (Sample("b", TEXTS[2], TEXTS[3], 0.7, lambda: b""), rng.standard_normal(11200).astype(np.float32) * 0.1)]
    return model, tok, E2ECollator(fe, tok)(pairs)


def test_batch_holds_both_tasks_for_the_same_clips():
    model, tok, batch = _batch()
    assert batch["input_values"].shape[0] == 2 and batch["decoder_input_ids"].shape[0] == 4
    assert batch["decoder_input_ids"][0, :3].tolist() == prompt_ids(tok, "asr")
    assert batch["decoder_input_ids"][2, :3].tolist() == prompt_ids(tok, "st")
    assert (batch["labels"][:, :2] == -100).all()  # the task and language codes are given, not predicted
    assert tok.decode(batch["labels"][2][batch["labels"][2] >= 0], skip_special_tokens=True) == TEXTS[1]


def test_one_pass_multitask_gradient_equals_the_papers_two_passes():
    """Same loss, same gradient, half the encoder work: what lets gradient checkpointing and batch > 1 in."""
    model, tok, batch = _batch()
    model.eval()  # no dropout / layerdrop / masking: the two schemes must agree exactly
    ours = MultitaskE2E(model, asr_weight=0.3)
    loss, parts = ours(**batch)
    loss.backward()
    g_ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    paper = DuplicatedBatchE2E(model, asr_weight=0.3)
    total = paper.backward_each(**batch, backward=lambda l: l.backward())
    assert torch.allclose(loss.detach(), total, atol=1e-5)
    for n, p in model.named_parameters():
        if n in g_ours:
            assert torch.allclose(g_ours[n], p.grad, atol=1e-5, rtol=1e-4), n
    assert set(parts) == {"asr", "st"}


def test_ctc_on_the_encoder_frames_before_the_adapter():
    """The CTC loss reads the 50-per-second frames (the adapter's are too few for the transcript) and its
    gradient reaches the encoder, not the decoder."""
    model, fe, tok = build_offline(TEXTS, vocab_size=300)
    rng = np.random.default_rng(0)
    pairs = [(Sample("a", TEXTS[0], TEXTS[1], 2.0, lambda: b""), rng.standard_normal(32000).astype(np.float32) * 0.1),
             (Sample("b", TEXTS[2], TEXTS[3], 1.5, lambda: b""), rng.standard_normal(24000).astype(np.float32) * 0.1)]
    batch = E2ECollator(fe, tok, ctc=True)(pairs)
    assert batch["ctc_targets"][0] == tok(TEXTS[0], add_special_tokens=False).input_ids  # no prompt, no </s>
    model.eval()
    net = MultitaskE2E(model, ctc_weight=0.3)
    seen = []
    net.ctc.proj.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[1]))
    loss, parts = net(**batch)
    frames = int(model.encoder._get_feat_extract_output_lengths(32000, add_adapter=False))
    assert seen == [frames] and frames > 2 * len(batch["ctc_targets"][0])
    plain, _ = MultitaskE2E(model)(**{k: v for k, v in batch.items() if k != "ctc_targets"})
    assert torch.allclose(loss, 0.7 * plain + 0.3 * parts["ctc"], atol=1e-5) and parts["ctc"] > 0
    loss.backward()
    assert model.encoder.encoder.layers[0].attention.q_proj.weight.grad.abs().sum() > 0


def test_encoder_runs_once_per_batch():
    model, tok, batch = _batch()
    calls = []
    model.encoder.register_forward_hook(lambda *a: calls.append(1))
    MultitaskE2E(model)(**batch)
    assert len(calls) == 1


def test_train_e2e_mt_and_evaluate_st_side_by_side(small_export, tmp_path):
    e2e = tmp_path / "e2e"
    common = ["train", "e2e", "--dataset", str(small_export), "--dataset_config", "prelabeled",
              "--output_dir", str(e2e), "--eval_steps", "2", "--save_steps", "2", "--gradient_checkpointing",
              "--freeze_encoder_steps", "1", "--ctc_weight", "0.3", *TINY, "--scratch_tokenizer", "char"]
    first = run_vecs(*common, "--max_steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_vecs(*common, "--max_steps", "3")
    assert second.returncode == 0 and "resumed from checkpoint-2 (step 2)" in second.stdout + second.stderr
    history = json.loads((e2e / "train_results.json").read_text())["history"]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]
    assert all("st" in h and "ctc" in h for h in history if "loss" in h)
    from safetensors.torch import load_file

    before, after = load_file(e2e / "base" / "model.safetensors"), load_file(e2e / "best" / "model.safetensors")
    conv = [k for k in before if k.startswith("encoder.feature_extractor.")]
    assert conv and any(not torch.equal(before[k], after[k]) for k in conv)  # a random front end is not frozen
    assert not any(k.startswith("ctc.") for k in after)  # the CTC head is training-only
    from modeling.e2e.tokenizer import load_tokenizer

    tok = load_tokenizer(str(e2e / "best"))  # the character tokenizer is saved with it: no multi-character tokens
    plain = [t for t in tok.get_vocab() if t not in tok.all_special_tokens and not t.startswith("<")]
    assert len(plain) > 20 and all(len(t) == 1 for t in plain), sorted(plain, key=len)[-5:]

    from huggingface_hub import ModelCard

    card = ModelCard.load(e2e / "best" / "README.md")
    types = {m["type"] for r in card.data.to_dict()["model-index"][0]["results"] for m in r["metrics"]}
    assert {"wer", "cer", "bleu", "chrf"} <= types and "<2translate>" in card.text

    whisper, mt = tmp_path / "whisper", tmp_path / "mt"
    w = run_vecs("train", "whisper", "--dataset", str(small_export), "--dataset_config", "prelabeled",
                 "--output_dir", str(whisper), "--model_name_or_path", "scratch", "--scratch_d_model", "64",
                 "--scratch_encoder_layers", "1", "--scratch_decoder_layers", "1", "--scratch_vocab_size", "300",
                 "--scratch_tokenizer", "bpe", "--input_seconds", "8", "--max_steps", "1", "--max_eval_samples", "2",
                 "--max_train_samples", "8",
                 "--per_device_train_batch_size", "2", "--progress", "false")
    assert w.returncode == 0, w.stderr[-3000:]
    m = run_vecs("train", "mt", "--dataset", str(small_export), "--dataset_config", "prelabeled", "--output_dir",
                 str(mt), "--model_name_or_path", "scratch", "--scratch_vocab_size", "300", "--max_steps", "2",
                 "--eval_steps", "2", "--max_eval_samples", "2", "--per_device_train_batch_size", "4",
                 "--learning_rate", "1e-3", "--progress", "false")
    assert m.returncode == 0, m.stderr[-3000:]

    ev = run_vecs("evaluate", "--task", "st", "--model", str(e2e / "best"), "--asr-model", str(whisper / "best"),
                  "--mt-model", str(mt / "best"), "--dataset", str(small_export), "--config", "prelabeled",
                  "--split", "test", "--limit", "3", "--out", str(tmp_path / "st"), "--no-progress")
    assert ev.returncode == 0, ev.stderr[-3000:]
    out = ev.stdout
    assert "e2e" in out and "cascade (sentence)" in out and "cascade (English spans)" in out
    assert "BLEU signature: nrefs:1" in out and "chrF signature: nrefs:1" in out
    metrics = json.loads((tmp_path / "st" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"e2e", "cascade (sentence)", "cascade (English spans)"}
    assert all(r["samples"] == 3 and r["latency_mean_ms"] > 0 for r in metrics["systems"].values())
    assert (tmp_path / "st" / "st_scores.png").exists()

    asr = run_vecs("evaluate", "--model", str(e2e / "best"), "--dataset", str(small_export), "--config",
                   "prelabeled", "--split", "test", "--limit", "2", "--out", str(tmp_path / "e2e-asr"),
                   "--no-progress")
    assert asr.returncode == 0 and json.loads((tmp_path / "e2e-asr" / "metrics.json").read_text())["samples"] == 2


def test_spans_mode_keeps_vietnamese_words():
    from modeling.mt.decode import Translator
    from modeling.mt.model import build_offline as build_mt

    model, tok = build_mt(TEXTS, vocab_size=300)
    tr = Translator(model, tok)
    seen = []
    tr.translate = lambda texts: seen.extend(texts) or [f"<{t}>" for t in texts]
    out = tr.translate_spans(["mình có một meeting rất quan trọng với team building"])
    assert seen == ["meeting", "team building"]
    assert out == ["mình có một <meeting> rất quan trọng với <team building>"]


def test_bad_input_for_st(small_export, tmp_path):
    none = run_vecs("evaluate", "--task", "st", "--dataset", str(small_export), "--config", "prelabeled")
    assert none.returncode == 2 and "--task st needs" in none.stderr and "Traceback" not in none.stderr
    bad = run_vecs("train", "e2e", "--dataset", str(small_export), "--dataset_config", "prelabeled",
                   "--output_dir", str(tmp_path / "x"), "--encoder_name_or_path", "/nonexistent/encoder",
                   "--max_steps", "1", "--progress", "false")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "encoder '/nonexistent/encoder' cannot be loaded: no such folder" in bad.stderr


def test_encoder_held_still_for_its_first_steps(small_export, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "held"
    run = run_vecs("train", "e2e", "--dataset", str(small_export), "--dataset_config", "prelabeled",
                   "--output_dir", str(out), "--max_steps", "1", "--eval_steps", "1", "--save_steps", "1",
                   "--freeze_encoder_steps", "5", "--layerdrop", "0", *TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    before = load_file(out / "base" / "model.safetensors")
    after = load_file(out / "best" / "model.safetensors")
    enc = [k for k in before if k.startswith("encoder.encoder.layers.")]
    adapter = [k for k in before if k.startswith("encoder.adapter.")]
    dec = [k for k in before if k.startswith("decoder.model.decoder.layers.")]
    assert enc and adapter and dec
    assert all(torch.equal(before[k], after[k]) for k in enc)  # held still
    assert any(not torch.equal(before[k], after[k]) for k in adapter)  # the adapter learns from step one
    assert any(not torch.equal(before[k], after[k]) for k in dec)


def test_a_tokenizer_that_cannot_encode_the_transcripts_fails_before_training():
    """Text the tokenizer maps to <unk> (here Thai, for a tokenizer trained on Vietnamese and English) fails in one
    line naming the split, the count and the characters; a rare stray character only warns."""
    import pytest

    from modeling.data import DataError
    from modeling.text_tokenizer import check_encodable
    from modeling.e2e.tokenizer import train_tokenizer

    tok = train_tokenizer(TEXTS, vocab_size=300)
    ok = [Sample(str(i), t, t, 1.0, lambda: b"") for i, t in enumerate(TEXTS)]
    check_encodable(tok, ok, ("transcript", "translation"), "export [verified/train]")  # nothing to say
    thai = [Sample(f"th{i}", "สวัสดี team", "xin chào nhóm", 1.0, lambda: b"") for i in range(5)]
    with pytest.raises(DataError) as caught:
        check_encodable(tok, ok + thai, ("transcript", "translation"), "export [verified/train]")
    line = str(caught.value)
    assert line.startswith("export [verified/train]: the tokenizer cannot encode 5 of 85 transcripts")
    assert "ส" in line and "\n" not in line
    warned = []
    check_encodable(tok, ok * 10 + thai[:1], ("transcript",), "export [verified/train]", warn=warned.append)
    assert len(warned) == 1 and "1 of 801 transcripts" in warned[0] and "training goes on" in warned[0]
