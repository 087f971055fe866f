"""Whisper offline: the tokenizer's layout, labels, the loop guard, training a few steps (with CTC), resuming,
the card, ``vecs evaluate`` and the errors a user sees for bad input."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import run_vecs
from modeling.data import Sample
from modeling.data import IGNORE
from modeling.whisper.collate import WhisperCollator
from modeling.decoding import LoopGuard
from modeling.whisper.model import build_offline
from modeling.whisper.tokenizer import check_layout, train_whisper_tokenizer
from transformers.models.whisper.tokenization_whisper import LANGUAGES

TEXTS = ["mình có một meeting rất quan trọng với team", "deadline là thứ sáu nha mọi người",
         "cái feature này cần review lại", "let's schedule a call tomorrow"] * 20

TINY = ["--model_name_or_path", "scratch", "--scratch_d_model", "64", "--scratch_encoder_layers", "2",
        "--scratch_decoder_layers", "1", "--scratch_vocab_size", "400", "--input_seconds", "8",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--max_eval_samples", "4",
        "--max_train_samples", "40", "--logging_steps", "1", "--warmup_steps", "2", "--progress", "false"]


def test_tokenizer_follows_whispers_layout():
    tok = train_whisper_tokenizer(TEXTS, vocab_size=300)
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    assert tok.convert_tokens_to_ids("<|vi|>") == sot + 1 + list(LANGUAGES).index("vi")
    assert tok.convert_tokens_to_ids("<|0.00|>") == tok.convert_tokens_to_ids("<|notimestamps|>") + 1
    ids = tok(" mình có một meeting", add_special_tokens=False).input_ids
    assert tok.decode(ids).strip() == "mình có một meeting"
    tok.add_special_tokens({"additional_special_tokens": ["<|extra|>"]})  # breaks the layout
    with pytest.raises(ValueError, match="timestamp"):
        check_layout(tok)


def test_a_character_tokenizer_spells_every_word_and_still_encodes_unseen_characters():
    tok = train_whisper_tokenizer(TEXTS, unit="char")
    check_layout(tok)
    for text in (" mình có một meeting", " review lại"):
        ids = tok(text, add_special_tokens=False).input_ids
        assert [tok.decode([i]) for i in ids] == list(text)  # one token per character, accents included
        assert tok.decode(ids) == text
    unseen = " ngưỡng €"  # characters not in the training text: their UTF-8 bytes, never <unk>
    ids = tok(unseen, add_special_tokens=False).input_ids
    assert tok.decode(ids) == unseen and tok.unk_token_id not in ids and len(ids) > len(unseen)
    with pytest.raises(ValueError, match="'word'.*bpe, char"):
        train_whisper_tokenizer(TEXTS, unit="word")


def test_labels_pick_the_language_and_never_translate():
    _, processor = build_offline(TEXTS, input_seconds=4, vocab_size=300, d_model=32, encoder_layers=1,
                                 decoder_layers=1)
    tok = processor.tokenizer
    col = WhisperCollator(processor, timestamp_fraction=0.0)
    vi = Sample("a", "mình có một meeting rất quan trọng", "", 2.0, lambda: b"")
    en = Sample("b", "let's schedule a call tomorrow", "", 2.0, lambda: b"")
    batch = col([(vi, torch.zeros(32000).numpy()), (en, torch.zeros(16000).numpy())])
    dec = batch["decoder_input_ids"]
    assert tok.convert_ids_to_tokens(dec[0, :4].tolist()) == ["<|startoftranscript|>", "<|vi|>", "<|transcribe|>",
                                                              "<|notimestamps|>"]
    assert tok.convert_ids_to_tokens(dec[1, 1].item()) == "<|en|>"
    assert tok.convert_tokens_to_ids("<|translate|>") not in dec.tolist()[0] + dec.tolist()[1]
    labels = batch["labels"]
    assert labels[0, 0].item() == tok.convert_tokens_to_ids("<|vi|>")  # labels are the inputs shifted by one
    assert (labels[1] == IGNORE).sum() > 0 and labels[0, -1].item() == tok.eos_token_id
    assert batch["input_features"].shape[-1] == 400 and batch["frame_lengths"].tolist() == [200, 100]
    ts = WhisperCollator(processor, timestamp_fraction=1.0)(
        [(vi, torch.zeros(32000).numpy())])["decoder_input_ids"][0].tolist()
    assert tok.convert_ids_to_tokens(ts[3]) == "<|0.00|>" and "<|2.00|>" in tok.convert_ids_to_tokens(ts)


def test_loop_guard_blocks_only_the_continuation_of_a_run():
    guard = LoopGuard(prefix_length=2, max_ngram=4, max_repeats=3)
    looping = torch.tensor([[1, 2, 7, 8, 9, 7, 8, 9, 7, 8, 9]])  # "7 8 9" three times in a row
    scores = guard(looping, torch.zeros(1, 20))
    assert scores[0, 7].item() == -math.inf and torch.isfinite(scores[0, [8, 9, 10]]).all()
    spread = torch.tensor([[1, 2, 7, 8, 9, 4, 7, 8, 9, 5, 7, 8, 9]])  # repeated, but not in a row
    assert torch.isfinite(guard(spread, torch.zeros(1, 20))).all()
    assert torch.isfinite(guard(torch.tensor([[1, 2, 7, 8, 9, 7, 8, 9]]), torch.zeros(1, 20))).all()


def test_speed_perturbation_changes_tempo_and_pitch_and_keeps_clips_within_the_input():
    """Voices the model never heard are the test split's: each training clip is played at one of the factors (a
    440 Hz tone at 1.1 becomes 484 Hz, 10 % shorter); a clip that would outgrow the encoder input keeps its speed."""
    import numpy as np

    from modeling.data import DataError
    from modeling.whisper.train import WhisperTask, WhisperTrainingArguments

    def task(factors: str) -> WhisperTask:
        t = WhisperTask(WhisperTrainingArguments(output_dir="unused", dataset="unused", input_seconds=4.0,
                                                 speed_perturbation=factors))
        t.factors = t.speed_factors()
        return t

    def clip(seconds: float) -> Sample:
        tone = np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000).astype(np.float32) * 0.5
        sample = Sample("c", "mình có một meeting", "", seconds, lambda: b"")
        sample.samples = lambda: tone
        return sample

    fast = task("1.1").inputs(clip(2.0))
    assert len(fast) == pytest.approx(32000 / 1.1, abs=2)
    assert np.argmax(np.abs(np.fft.rfft(fast))) * 16000 / len(fast) == pytest.approx(484, abs=2)
    assert len(task("0.9").inputs(clip(2.0))) == pytest.approx(32000 / 0.9, abs=2)
    assert len(task("0.9").inputs(clip(3.9))) == int(3.9 * 16000)  # 4.33 s would not fit the 4 s input
    assert len(task("").inputs(clip(2.0))) == 32000
    for bad in ("0", "fast", "1.1,3"):
        with pytest.raises(DataError, match=f"--speed_perturbation '{bad}': expected comma-separated factors"):
            task(bad)


def test_train_resume_card_and_evaluate(small_export, tmp_path):
    out = tmp_path / "run"
    common = ["train", "whisper", "--dataset", str(small_export), "--dataset_config", "prelabeled",
              "--output_dir", str(out), "--ctc_weight", "0.3", "--eval_steps", "3", "--save_steps", "3", *TINY,
              "--scratch_tokenizer", "char"]
    first = run_vecs(*common, "--max_steps", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    losses = [h for h in state["history"] if "loss" in h]
    assert len(losses) == 3 and all("ctc" in h for h in losses)  # the CTC head is trained
    second = run_vecs(*common, "--max_steps", "5")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed from checkpoint-3 (step 3)" in second.stdout + second.stderr
    results = json.loads((out / "train_results.json").read_text())
    assert results["steps"] == 5 and [h["step"] for h in results["history"] if "loss" in h] == [1, 2, 3, 4, 5]

    from huggingface_hub import ModelCard
    from transformers import WhisperForConditionalGeneration

    best = out / "best"
    WhisperForConditionalGeneration.from_pretrained(best)  # a plain Whisper checkpoint, no CTC head inside
    from transformers import WhisperProcessor

    spelled = WhisperProcessor.from_pretrained(best).tokenizer(" meeting", add_special_tokens=False).input_ids
    assert len(spelled) == len(" meeting")  # the character tokenizer is saved with the model
    card = ModelCard.load(best / "README.md")
    index = card.data.to_dict()["model-index"][0]["results"][0]
    assert {m["type"] for m in index["metrics"]} >= {"cer", "wer", "loop_rate"}
    cer = [m["value"] for m in index["metrics"] if m["type"] == "cer"][0]
    assert cer == json.loads((best / "eval_results.json").read_text())["cer"]
    assert "`ctc_weight` | `0.3`" in card.text and (out / "loss_curve.png").exists()

    ev = run_vecs("evaluate", "--model", str(best), "--dataset", str(small_export), "--config", "prelabeled",
                  "--split", "test", "--out", str(tmp_path / "eval"), "--limit", "3", "--no-progress")
    assert ev.returncode == 0, ev.stderr[-3000:]
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["samples"] == 3 and {"wer", "cer", "en_error_rate", "vi_error_rate", "loop_rate", "rtf",
                                  "latency_p95_ms"} <= set(m)
    preds = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 3 and all(p["language"] in ("vi", "en") for p in preds)
    assert (tmp_path / "eval" / "length_scatter.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_fails_before_training_with_one_line(small_export, tmp_path):
    out = tmp_path / "bad"
    missing = run_vecs("train", "whisper", "--dataset", str(tmp_path / "nope"), "--output_dir", str(out), *TINY)
    assert missing.returncode == 2 and "cannot be loaded" in missing.stderr and "Traceback" not in missing.stderr
    empty = run_vecs("train", "whisper", "--dataset", str(small_export), "--dataset_config", "verified",
                     "--output_dir", str(out), *TINY)
    assert empty.returncode == 2 and "verified" in empty.stderr and "Traceback" not in empty.stderr
    model = run_vecs("evaluate", "--model", str(tmp_path / "no-model"), "--dataset", str(small_export),
                     "--config", "prelabeled", "--out", str(tmp_path / "e"))
    assert model.returncode == 2 and "cannot be loaded" in model.stderr and "Traceback" not in model.stderr
    assert not (out / "checkpoint-1").exists()


def test_dataset_problems_are_one_line_errors(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modeling.data import DataError, load_split

    (tmp_path / "data" / "c").mkdir(parents=True)
    (tmp_path / "README.md").write_text("---\nconfigs:\n- config_name: c\n  data_files:\n  - split: train\n"
                                        "    path: data/c/train-*.parquet\n---\n")
    pq.write_table(pa.table({"id": ["a"], "audio": [{"bytes": b"not audio", "path": "a.flac"}], "text": ["x"]}),
                   tmp_path / "data" / "c" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=r"\[c/train\]: missing columns transcript"):
        load_split(str(tmp_path), "c", "train")
    pq.write_table(pa.table({"id": ["a", "b"], "audio": [{"bytes": b"not audio", "path": "a.flac"}] * 2,
                             "transcript": ["xin chào", ""]}), tmp_path / "data" / "c" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match="no usable samples .*undecodable_audio 1.*empty_transcript 1|"
                                        "no usable samples .*empty_transcript 1.*undecodable_audio 1"):
        load_split(str(tmp_path), "c", "train")


def test_long_audio_is_cut_at_pauses_and_a_short_clip_decodes_the_same_beside_a_long_one():
    """A batch holding one clip longer than the window was decoded entirely long-form, with timestamp seeking a model
    trained without timestamps never does and temperature sampling: the short clips of the test split came out as
    noise (test CER 1.09 where the same model, clip by clip, was right). Long audio is now cut at pauses."""
    import numpy as np

    from modeling.decoding import split_at_pauses
    from modeling.whisper.decode import WhisperTranscriber

    rng = np.random.default_rng(0)
    word = lambda s: (rng.standard_normal(int(s * 16000)) * 0.2).astype(np.float32)  # noqa: E731
    gap = lambda s: np.zeros(int(s * 16000), dtype=np.float32)  # noqa: E731
    long = np.concatenate([word(1.5), gap(0.3), word(1.2), gap(0.4), word(2.0), gap(0.2), word(1.6), gap(0.3),
                           word(1.4)])
    pieces = split_at_pauses(long, 4.0)
    assert len(pieces) > 1 and all(len(p) <= 4 * 16000 for p in pieces)
    assert np.array_equal(np.concatenate(pieces), long)
    ends = np.cumsum([len(p) for p in pieces])[:-1]
    assert all(long[e] == 0.0 for e in ends)  # every cut falls in a pause, none through a "word"
    assert len(split_at_pauses(long[:16000], 4.0)) == 1  # audio within the window stays whole

    torch.manual_seed(0)
    model, processor = build_offline(TEXTS, input_seconds=4, vocab_size=300, d_model=64, encoder_layers=1,
                                     decoder_layers=1)
    t = WhisperTranscriber(model.double(), processor)  # float64: batched and single decodes agree numerically
    short = word(2.0)
    alone = t.transcribe([short])[0].text
    assert t.transcribe([short, long])[0].text == alone


def test_offline_decoding_never_samples_timestamp_tokens_so_each_window_is_decoded_once():
    """An undertrained checkpoint that emits a timestamp token under <|notimestamps|> made generate() seek to it and
    decode the window again, frame by frame: an evaluation inside training ran for minutes (CI timed out)."""
    from modeling.whisper.decode import WhisperTranscriber

    torch.manual_seed(0)
    model, processor = build_offline(TEXTS, input_seconds=4, vocab_size=300, d_model=64, encoder_layers=1,
                                     decoder_layers=1)
    tok = processor.tokenizer
    word = tok(" deadline", add_special_tokens=False).input_ids[0]
    with torch.no_grad():  # the decoder's output is one fixed vector: <|0.02|> scores highest, then a text token
        norm, w = model.model.decoder.layer_norm, model.get_output_embeddings().weight
        norm.weight.zero_()
        norm.bias.copy_(torch.randn(norm.bias.shape))
        w.zero_()
        w[tok.convert_tokens_to_ids("<|0.02|>")] = norm.bias * 10
        w[word] = norm.bias * 5
    passes = []
    model.model.encoder.register_forward_hook(lambda *_: passes.append(1))
    out = WhisperTranscriber(model, processor).transcribe([np.full(int(3.5 * 16000), 0.01, dtype=np.float32)])
    assert len(passes) == 2  # the language step and one generate pass
    assert out[0].text.startswith(tok.decode([word]).strip())
