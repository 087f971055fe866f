"""The streaming engine with a scripted decoder: LocalAgreement commits, hysteresis, short fragments by
script, universal padding removed, VAD flush at pauses, no text on silence, the repetition filter."""
from __future__ import annotations

import numpy as np

from modeling.streaming.hypothesis import HypothesisBuffer, Word
from modeling.streaming.language import LanguageTracker, fragment_language, script_language
from modeling.streaming.online import Decoded, OnlineProcessor, drop_repeats

SR = 16000
# the utterance the scripted decoder "hears": word, start, end (stream seconds)
SPEECH = [("mình", 0.1, 0.4), ("có", 0.45, 0.6), ("một", 0.65, 0.9), ("meeting", 1.0, 1.5), ("rất", 1.6, 1.8),
          ("quan", 1.85, 2.1), ("trọng", 2.15, 2.4), ("với", 2.5, 2.7), ("team", 2.8, 3.2)]


class ScriptedDecoder:
    """Returns the words of SPEECH that lie inside the buffer it is given (times relative to the audio it gets,
    padding included), so its hypothesis grows as audio arrives; says the padding clip's words when padded."""

    def __init__(self, probs=None, padding_words=()):
        self.calls = []
        self.proc = None
        self.probs = probs or (lambda i: {"vi": 0.9, "en": 0.1})
        self.padding_words = padding_words

    def decode(self, audio, *, prompt, languages):
        self.calls.append({"seconds": len(audio) / SR, "prompt": prompt, "languages": languages})
        pad = (len(audio) - len(self.proc.audio)) / SR
        start = self.proc.offset - pad  # stream time of audio[0]
        dur = len(audio) / SR
        words = [Word(s - start, e - start, t) for t, s, e in SPEECH if s - start >= pad and e - start <= dur]
        if pad:
            words = [Word(s, e, t) for t, s, e in self.padding_words] + words
        return Decoded(words, self.probs(len(self.calls)))


def _stream(proc, seconds: float, chunk: float = 0.5, audio=None):
    audio = audio if audio is not None else np.random.default_rng(0).standard_normal(int(seconds * SR)).astype(
        np.float32) * 0.1
    updates = []
    for i in range(0, len(audio), int(chunk * SR)):
        proc.insert_audio_chunk(audio[i:i + int(chunk * SR)])
        updates.append(proc.process_iter())
    updates.append(proc.finish())
    return updates


def test_local_agreement_commits_only_what_two_hypotheses_share():
    hb = HypothesisBuffer()
    hb.insert([Word(0.1, 0.4, "mình"), Word(0.45, 0.6, "có")], 0.0)
    assert hb.flush() == []  # the first hypothesis alone commits nothing
    hb.insert([Word(0.1, 0.4, "mình"), Word(0.45, 0.6, "có"), Word(0.65, 0.9, "một")], 0.0)
    assert [w.text for w in hb.flush()] == ["mình", "có"]
    hb.insert([Word(0.65, 0.9, "mốt")], 0.0)  # disagreement: nothing new
    assert hb.flush() == [] and [w.text for w in hb.tentative()] == ["mốt"]


def test_stream_commits_every_word_once_in_order_with_latency():
    dec = ScriptedDecoder()
    proc = OnlineProcessor(dec)
    dec.proc = proc
    updates = _stream(proc, 3.5)
    words = " ".join(c.text for u in updates for c in u.commits).split()
    assert words == [w for w, _, _ in SPEECH]
    commits = [c for u in updates for c in u.commits]
    assert all(c.latency >= 0 for c in commits) and commits[0].latency < 1.5
    assert any(call["prompt"].startswith("mình có") for call in dec.calls)  # committed text is the prompt
    assert all(call["languages"] == ("vi", "en") for call in dec.calls)


def test_hysteresis_needs_consecutive_windows():
    t = LanguageTracker(("vi", "en"), threshold=0.6, patience=2)
    assert t.update({"vi": 0.3, "en": 0.7}) == "vi"  # one window is not a switch
    assert t.update({"vi": 0.8, "en": 0.2}) == "vi"
    assert t.update({"vi": 0.3, "en": 0.7}) == "vi"
    assert t.update({"vi": 0.45, "en": 0.55}) == "vi"  # below the threshold: the streak breaks
    assert t.update({"vi": 0.2, "en": 0.8}) == "vi"
    assert t.update({"vi": 0.2, "en": 0.8}) == "en"


def test_short_fragments_are_tagged_by_script():
    assert script_language("ok", "vi") == "en"
    assert script_language("rồi", "en") == "vi"
    assert script_language("123", "en") == "en"  # no letters: keep the previous language
    assert fragment_language("team", "vi", "vi") == "en"
    assert fragment_language("meeting rất quan trọng", "vi", "en") == "vi"  # long enough: the window decides


def test_padding_text_is_removed_and_only_used_for_short_buffers():
    padding = np.zeros(int(1.0 * SR), dtype=np.float32)
    dec = ScriptedDecoder(padding_words=[("okay", 0.1, 0.4), ("bye", 0.5, 0.7), ("bye", 0.75, 0.95)])
    proc = OnlineProcessor(dec, padding=padding, padding_cutoff=2.0)
    dec.proc = proc
    updates = _stream(proc, 3.5)
    text = " ".join(c.text for u in updates for c in u.commits)
    assert "okay" not in text and "bye" not in text and text.startswith("mình có")
    assert dec.calls[0]["seconds"] == 1.5 and max(c["seconds"] for c in dec.calls) == 3.5  # padded only when short


def test_no_text_on_silence_and_vad_flushes_at_a_pause():
    silence = np.zeros(int(2.0 * SR), dtype=np.float32)
    dec = ScriptedDecoder()
    proc = OnlineProcessor(dec, vad=lambda audio: [])
    dec.proc = proc
    assert all(not u.commits and not u.tentative for u in _stream(proc, 2.0, audio=silence)) and not dec.calls

    def vad(audio):  # speech until 3.2 s of stream time, then a pause
        end = min(len(audio) / SR, 3.2 - proc.offset)
        return [(0.0, end)] if end > 0 else []

    dec = ScriptedDecoder()
    proc = OnlineProcessor(dec, vad=vad, flush_silence=0.5)
    dec.proc = proc
    audio = np.concatenate([np.random.default_rng(1).standard_normal(int(3.2 * SR)).astype(np.float32) * 0.1,
                            np.zeros(int(1.0 * SR), dtype=np.float32)])
    updates = []
    for i in range(0, len(audio), SR // 2):
        proc.insert_audio_chunk(audio[i:i + SR // 2])
        updates.append(proc.process_iter())
    # flushed at the pause without waiting for another hypothesis or the end of the stream
    assert " ".join(c.text for u in updates for c in u.commits).split() == [w for w, _, _ in SPEECH]
    assert proc.offset >= 3.2 - 1e-6


def test_repetition_filter_cuts_loops():
    words = [Word(i, i + 0.1, t) for i, t in enumerate("ok ok ok ok ok ok team".split())]
    assert [w.text for w in drop_repeats(words)] == ["ok", "ok", "ok"]
    phrase = [Word(i, i + 0.1, t) for i, t in enumerate("a b a b a b a b c".split())]
    assert [w.text for w in drop_repeats(phrase)] == "a b a b a b".split()
    normal = [Word(i, i + 0.1, t) for i, t in enumerate("rất rất vui".split())]
    assert drop_repeats(normal) == normal


def test_whisper_backend_reads_the_pair_and_times_words_inside_the_window():
    """Integration with a tiny real Whisper (untrained: the text is noise, the contract is what is checked)."""
    import torch

    from modeling.streaming.whisper_backend import WhisperBackend
    from modeling.whisper.model import build_offline

    torch.manual_seed(0)
    model, processor = build_offline(["mình có một meeting rất quan trọng với team"] * 30, input_seconds=4,
                                     vocab_size=300, d_model=64, encoder_layers=1, decoder_layers=1)
    backend = WhisperBackend(model, processor)
    audio = np.random.default_rng(0).standard_normal(int(2.5 * SR)).astype(np.float32) * 0.1
    out = backend.decode(audio, prompt="mình có", languages=("vi", "en"))
    assert set(out.language_probs) == {"vi", "en"} and abs(sum(out.language_probs.values()) - 1) < 1e-5
    assert all(0 <= w.start <= w.end <= 2.5 for w in out.words)
    proc = OnlineProcessor(backend, trim_seconds=1.0)
    for i in range(0, 8 * SR, SR):
        proc.insert_audio_chunk(np.random.default_rng(i).standard_normal(SR).astype(np.float32) * 0.1)
        proc.process_iter()
        assert len(proc.audio) <= 6 * SR  # bounded even when hypotheses never agree
    proc.finish()


def test_backend_never_samples_timestamp_tokens_so_the_window_is_decoded_once():
    """A checkpoint that emits a timestamp token under <|notimestamps|> made generate() decode the window again
    from that time (4 passes here, each repeating words); the backend suppresses them."""
    import torch

    from modeling.streaming.whisper_backend import WhisperBackend
    from modeling.whisper.model import build_offline

    torch.manual_seed(0)
    model, processor = build_offline(["mình có một meeting rất quan trọng với team"] * 30, input_seconds=4,
                                     vocab_size=300, d_model=64, encoder_layers=1, decoder_layers=1)
    tok = processor.tokenizer
    with torch.no_grad():  # the decoder's output is one fixed vector: <|1.00|> scores highest, then "meeting"
        norm, w = model.model.decoder.layer_norm, model.get_output_embeddings().weight
        norm.weight.zero_()
        norm.bias.copy_(torch.randn(norm.bias.shape))
        w.zero_()
        w[tok.convert_tokens_to_ids("<|1.00|>")] = norm.bias * 10
        w[tok.convert_tokens_to_ids("Ġmeeting")] = norm.bias * 5
    encoder_passes = []
    model.model.encoder.register_forward_hook(lambda *_: encoder_passes.append(1))
    backend = WhisperBackend(model, processor)
    out = backend.decode(np.zeros(int(2.5 * SR), dtype=np.float32) + 0.01, prompt="", languages=("vi", "en"))
    assert len(encoder_passes) == 2  # the language step and one generate pass
    assert out.words and all(w.text.startswith("meeting") and 0 <= w.start <= w.end <= 2.5 for w in out.words)


def test_a_long_committed_prompt_is_cut_to_the_decoders_room():
    """200 characters of unusual committed text are hundreds of byte-level tokens: with whisper-small's 448 positions
    generate() refused every window once the prompt had grown (seen on a GPU with random weights). The backend keeps
    the prompt's tail that fits beside the answer."""
    import torch

    from modeling.streaming.whisper_backend import WhisperBackend
    from modeling.whisper.model import build_offline

    torch.manual_seed(0)
    model, processor = build_offline(["mình có một meeting rất quan trọng với team"] * 30, input_seconds=4,
                                     vocab_size=300, d_model=64, encoder_layers=1, decoder_layers=1)
    model.config.max_target_positions = 64
    backend = WhisperBackend(model, processor, use_prompt=True)
    prompt = "ẞ€ỹ𝄞" * 50  # multi-byte characters the tokenizer never merged: ~3 tokens each
    assert len(processor.tokenizer.get_prompt_ids(prompt[-200:])) > 64
    audio = np.random.default_rng(0).standard_normal(int(2.5 * SR)).astype(np.float32) * 0.1
    out = backend.decode(audio, prompt=prompt, languages=("vi", "en"))
    assert all(0 <= w.start <= w.end <= 2.5 for w in out.words)


def test_transcribe_cli_streams_and_refuses_bad_input(tmp_path):
    import json

    import soundfile as sf

    from conftest import run_vecs
    from modeling.whisper.model import build_offline

    model, processor = build_offline(["mình có một meeting rất quan trọng với team"] * 30, input_seconds=4,
                                     vocab_size=300, d_model=64, encoder_layers=1, decoder_layers=1)
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    speech = tmp_path / "speech.wav"
    sf.write(speech, np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1, SR)
    from modeling.mt.model import build_offline as build_mt

    mt, tok = build_mt(["meeting team"] * 5, vocab_size=120, d_model=32, layers=1)
    mt.save_pretrained(tmp_path / "mt")
    tok.save_pretrained(tmp_path / "mt")
    ok = run_vecs("transcribe", str(speech), "--model", str(tmp_path / "m"), "--stream", "--chunk", "1.0", "--json",
                  "--translate", str(tmp_path / "mt"))
    assert ok.returncode == 0, ok.stderr[-2000:]
    for line in ok.stdout.splitlines():  # every committed segment: text, a language of the pair, times, latency
        seg = json.loads(line)
        assert seg["language"] in ("vi", "en") and seg["start"] <= seg["end"] and seg["latency"] is not None
        assert isinstance(seg["translation"], str)  # translated as it committed
    nomt = run_vecs("transcribe", str(speech), "--model", str(tmp_path / "m"), "--stream", "--translate",
                    str(tmp_path / "no-mt"))
    assert nomt.returncode == 2 and "no-mt" in nomt.stderr and "cannot be loaded" in nomt.stderr

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    for path, reason in ((silent, "silence only"), (text, "not readable media"), (tmp_path / "none.wav", "no such file")):
        bad = run_vecs("transcribe", str(path), "--model", str(tmp_path / "m"))
        assert bad.returncode == 2 and reason in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    nomodel = run_vecs("transcribe", str(speech), "--model", str(tmp_path / "nope"))
    assert nomodel.returncode == 2 and "cannot be loaded" in nomodel.stderr


def test_stream_resampler_matches_the_whole_signal_and_filters_aliases():
    """48 kHz int16 microphone chunks → 16 kHz: chunked equals all-at-once, a 440 Hz tone survives, a 12 kHz tone
    (above the new Nyquist) is removed instead of folding down."""
    from dataset_builder.foundation.audio import StreamResampler

    t = np.arange(2 * 48000) / 48000
    mic = ((0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 12000 * t)) * 32767).astype(np.int16)
    whole = StreamResampler(48000)(mic, final=True)
    r = StreamResampler(48000)
    chunked = np.concatenate([r(mic[i:i + 7000]) for i in range(0, len(mic), 7000)] + [r(mic[:0], final=True)])
    assert len(whole) == len(chunked) == 32000
    assert np.abs(whole - chunked).max() < 1e-6
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)
    assert np.abs(whole[100:-100] - ref[100:-100]).max() < 2e-3
    odd = StreamResampler(44100)(np.sin(2 * np.pi * 440 * np.arange(44100) / 44100), final=True)
    assert len(odd) == 16000


def test_backend_words_decode_multibyte_vietnamese_whole():
    """A Vietnamese letter spans two byte-level tokens: words are decoded whole, never as U+FFFD."""
    from modeling.streaming.whisper_backend import WhisperBackend
    from modeling.whisper.model import build_offline

    from tiny_models import TEXTS

    model, processor = build_offline(TEXTS, input_seconds=4, vocab_size=300, d_model=64, encoder_layers=1,
                                     decoder_layers=1)
    ids = processor.tokenizer(" mình có một meeting rất quan trọng", add_special_tokens=False).input_ids
    assert any("\ufffd" in processor.tokenizer.decode([i]) for i in ids)  # the case exists in this vocabulary
    backend = WhisperBackend(model, processor)
    words = backend._words(ids, [0.1 * i for i in range(len(ids) + 1)], 5.0)
    assert [w.text for w in words] == "mình có một meeting rất quan trọng".split()
    assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:]))
    # generate() hands back <|startofprev|> + the prompt before what it heard: the prompt is not transcript
    tok = processor.tokenizer
    head = list(tok.get_prompt_ids("với team")) + tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|vi|>", "<|transcribe|>", "<|notimestamps|>"])
    seq = [*head, *ids, tok.eos_token_id]
    stamps = [0.0] * len(head) + [0.1 * i for i in range(len(ids) + 1)]
    assert [w.text for w in backend._words(seq, stamps, 5.0)] == [w.text for w in words]


def test_live_session_resamples_translates_each_commit_and_ends_at_its_limit():
    """Browser-rate chunks through the live session: every commit is translated as it commits (Vietnamese kept,
    the English word sent to a real tiny MT model), and the stream ends at ``max_seconds``."""
    from modeling.mt.decode import Translator
    from modeling.mt.model import build_offline
    from modeling.streaming.live import LiveSession
    from modeling.streaming.translation import TranslationStream, text_translation

    mt_model, tok = build_offline(["meeting team deadline"] * 5, vocab_size=120, d_model=32, layers=1)
    translator = Translator(mt_model, tok)
    sent = []
    original = translator.translate
    translator.translate = lambda texts: sent.append(list(texts)) or original(texts)
    dec = ScriptedDecoder()
    proc = OnlineProcessor(dec, trim_seconds=10.0)
    dec.proc = proc
    session = LiveSession(proc, TranslationStream(text_translation(translator)), max_seconds=3.0)
    mic = (np.random.default_rng(0).standard_normal(48000 * 5) * 3000).astype(np.int16)
    views = [session.push(48000, mic[i:i + 24000]) for i in range(0, len(mic), 24000)]
    view = views[-1]
    assert view.ended.startswith("the 3 s limit") and abs(view.seconds - 3.0) < 1e-6
    assert len(views[-1].segments) == len(session.push(48000, mic[:24000]).segments)  # ignored after the end
    texts = [s.commit.text for s in view.segments]
    assert " ".join(texts).split() == [w for w, _, e in SPEECH if e <= 3.0]
    assert any(sent) and all("meeting" in " ".join(batch) or "team" in " ".join(batch)
                             for batch in sent)  # only English runs reach the MT model
    for seg in view.segments:  # Vietnamese words come through untouched
        kept = [w for w in seg.commit.text.split() if w not in ("meeting", "team")]
        assert all(w in seg.translation.split() for w in kept)
    assert all(s.commit.latency >= 0 for s in view.segments)


def test_speech_translation_sends_each_commits_own_audio():
    """The E2E translation stream cuts each commit's audio (plus a margin) out of the stream history."""
    from modeling.e2e.decode import E2ETranslator
    from modeling.e2e.model import build_offline
    from modeling.streaming.online import Commit
    from modeling.streaming.translation import TranslationStream, speech_translation

    e2e = E2ETranslator(*build_offline(["mình có một meeting"] * 5, vocab_size=120, layers=1))
    seen = []
    run = e2e.run
    e2e.run = lambda arrays, task: seen.append(([len(a) for a in arrays], task)) or run(arrays, task)
    stream = TranslationStream(speech_translation(e2e, margin=0.2), history_seconds=4.0)
    stream.feed(np.zeros(6 * SR, dtype=np.float32))  # the history keeps the last 4 s: stream time 2–6 s
    out = stream([Commit("meeting", "en", 3.0, 3.5, 0.2), Commit("cũ", "vi", 0.5, 1.0, 0.2)])
    assert seen == [([int(0.9 * SR)], "st")]  # 2.8–3.7 s; the commit older than the history is skipped
    assert out[1].translation == "" and isinstance(out[0].translation, str)


def test_a_trim_that_keeps_committed_audio_does_not_commit_it_twice():
    """Word times from cross-attention can be early: the buffer is cut before audio of committed words, they are
    heard again with later times. Two or more repeated words at the start of a hypothesis are an echo."""
    buf = HypothesisBuffer()
    said = [Word(0.2, 0.4, "let's"), Word(0.4, 0.6, "call"), Word(0.6, 0.8, "it"), Word(0.8, 1.0, "a"),
            Word(1.0, 1.2, "day")]
    for _ in range(2):
        buf.insert(said, 0.0)
        committed = buf.flush()
    assert [w.text for w in committed] == ["let's", "call", "it", "a", "day"]
    buf.pop_committed(5.0)  # the trim dropped them from the buffer's committed list
    echo = [Word(1.1, 1.3, "a"), Word(1.3, 1.5, "day"), Word(1.6, 1.8, "nhé"), Word(1.8, 2.0, "mọi"),
            Word(2.0, 2.2, "người")]
    for _ in range(2):  # the same audio heard again, its words placed 2.7 s after the last commit
        buf.insert(echo, 2.0)
        again = buf.flush()
    assert [w.text for w in again] == ["nhé", "mọi", "người"]
    single = HypothesisBuffer()  # far from the last commit, one matching word is not enough to drop it
    for _ in range(2):
        single.insert([Word(0.0, 0.3, "okay")], 0.0)
        single.flush()
    single.insert([Word(0.0, 0.3, "okay"), Word(0.3, 0.6, "team")], 3.0)
    assert [w.text for w in single.new] == ["okay", "team"]
