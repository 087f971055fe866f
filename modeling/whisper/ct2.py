"""Whisper on CTranslate2 (the engine of faster-whisper, which ufal/whisper_streaming and WhisperLiveKit use): int8
on a CPU, float16 on a GPU, several times faster than transformers' ``generate``.

A converted model is a folder with ``model.bin`` (``vecs convert MODEL --to ct2``, or the ``ct2/`` folder the
trainers add to a pushed model), its ``tokenizer.json`` and, for checkpoints of ours, the feature extractor and
generation settings. The bilingual rules are the transformers backend's: the language is chosen between the pair
from the model's own probabilities (CTranslate2's ``detect_language`` on multilingual Whisper; for a small
vocabulary, which CTranslate2 treats as English-only, the pair's two prompts are decoded and their scores
compared), generation is bounded by the clip's duration, repetition loops are cut, timestamp tokens are never
sampled, silence gives no text, and word times come from the alignment heads.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset_builder.foundation.config import SAMPLE_RATE

from ..decoding import Transcribing, Transcription, check_transcribe, split_at_pauses, trim_loops
from ..loading import ModelError
from .decode import PAIR

MARKER = "model.bin"
COPY = ("tokenizer.json", "processor_config.json", "preprocessor_config.json", "generation_config.json")
#: Above this no-speech probability a window is silence and gives no text. Stricter than Whisper's own rule (which
#: also asks for a mean log-probability under -1): tiny models say a confident "you" to silence.
NO_SPEECH = 0.6


def ct2_folder(name_or_path: str) -> Path | None:
    """The CTranslate2 model of ``name_or_path``: the folder itself, or its ``ct2/`` conversion."""
    path = Path(name_or_path)
    for folder in (path, path / "ct2"):
        if (folder / MARKER).exists():
            return folder
    return None


def hub_ct2_folder(repo_id: str) -> Path | None:
    """The ``ct2/`` folder of a Hub model repo (the trainers push one beside the weights), downloaded once."""
    if Path(repo_id).exists() or repo_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return ct2_folder(str(Path(snapshot_download(repo_id, allow_patterns=["ct2/*"])) / "ct2"))
    except Exception:  # offline, no such repo, no ct2/ in it: the caller says what is missing
        return None


def convert(model: str, out: str | Path, *, quantization: str = "float16") -> Path:
    """Convert a transformers Whisper checkpoint with CTranslate2's own converter; written beside ``out`` and
    renamed into place, so a failed conversion leaves nothing half-written."""
    import ctranslate2

    from ..loading import load_or_fail

    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    copy = [f for f in COPY if (Path(model) / f).exists()] if Path(model).is_dir() else ["tokenizer.json"]
    converter = load_or_fail(model, lambda m: ctranslate2.converters.TransformersConverter(m, copy_files=copy))
    try:
        converter.convert(str(tmp), quantization=None if quantization in ("none", "") else quantization, force=True)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"model {model!r} cannot be converted to CTranslate2: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _feature_extractor(folder: Path, n_mels: int):
    from transformers import WhisperFeatureExtractor

    for name, key in (("processor_config.json", "feature_extractor"), ("preprocessor_config.json", None)):
        if (folder / name).exists():
            cfg = json.loads((folder / name).read_text())
            cfg = cfg.get(key, {}) if key else cfg
            if cfg:
                return WhisperFeatureExtractor(**{k: v for k, v in cfg.items() if k in (
                    "feature_size", "sampling_rate", "hop_length", "chunk_length", "n_fft", "padding_value")})
    return WhisperFeatureExtractor(feature_size=n_mels)  # OpenAI's: 30 s windows


@dataclass
class Window:
    """One encoded window and what the decoder needs to know about it."""

    encoded: object  # ctranslate2.StorageView, [batch, positions, d_model]
    frames: list[int]  # non-padding mel frames per clip


class CT2Whisper:
    """A CTranslate2 Whisper with its tokenizer and feature extractor, and the bilingual decoding rules."""

    def __init__(self, folder: str | Path, *, device: str = "cpu", compute_type: str = "int8") -> None:
        import ctranslate2
        import tokenizers

        folder = Path(folder)
        kind, _, index = device.partition(":")
        self.model = ctranslate2.models.Whisper(str(folder), device=kind, device_index=int(index or 0),
                                                compute_type=compute_type)
        self.device, self.compute_type = device, compute_type
        self.tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.fe = _feature_extractor(folder, self.model.n_mels)
        gen = json.loads((folder / "generation_config.json").read_text()) if (folder / "generation_config.json").exists() else {}
        self.tokens_per_second = gen.get("vecs_tokens_per_second") or 12.0
        self.prompt_trained = gen.get("vecs_prompt_trained", True)
        self.multilingual_tokens = self.model.is_multilingual or bool(gen.get("is_multilingual"))
        ids = self.tok.token_to_id
        self.sot, self.eot = ids("<|startoftranscript|>"), ids("<|endoftext|>")
        self.transcribe_id, self.no_ts, self.prev = ids("<|transcribe|>"), ids("<|notimestamps|>"), ids("<|startofprev|>")
        self.window = self.fe.chunk_length
        # timestamp tokens are never sampled: word times come from the alignment heads
        self.suppress = [-1, *range(self.no_ts + 1, self.tok.get_vocab_size())]
        self.max_target = 448

    # -- features and language -------------------------------------------------------------------------------
    def encode(self, arrays: list[np.ndarray]) -> Window:
        import ctranslate2

        feats = self.fe(arrays, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features.astype(np.float32)
        frames = [min(len(a) // self.fe.hop_length, feats.shape[-1]) for a in arrays]
        return Window(self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats))), frames)

    def sot_sequence(self, language: str | None) -> list[int]:
        if not self.multilingual_tokens:  # English-only (*.en): no language or task token
            return [self.sot, self.no_ts]
        return [self.sot, self.tok.token_to_id(f"<|{language}|>"), self.transcribe_id, self.no_ts]

    def language_probs(self, window: Window, pair: tuple[str, ...]) -> list[dict[str, float]]:
        """The pair's probabilities per clip, renormalized over the pair."""
        n = len(window.frames)
        if not self.multilingual_tokens:
            return [{"en": 1.0} for _ in range(n)]
        if self.model.is_multilingual:
            out = []
            for ranked in self.model.detect_language(window.encoded):
                probs = {tok.strip("<|>"): p for tok, p in ranked}
                mass = {lang: probs.get(lang, 0.0) for lang in pair}
                total = sum(mass.values()) or 1.0
                out.append({lang: p / total for lang, p in mass.items()})
            return out
        # A small vocabulary (a model trained here): decode under each language of the pair and let the scores
        # (mean token log-probability) decide. The encoder runs once; the decoder once per language.
        scores = {lang: [r.scores[0] for r in self._generate(window, [lang] * n, 16)] for lang in pair}
        out = []
        for i in range(n):
            best = max(scores[lang][i] for lang in pair)
            exp = {lang: math.exp(scores[lang][i] - best) for lang in pair}
            total = sum(exp.values())
            out.append({lang: p / total for lang, p in exp.items()})
        return out

    # -- decoding -------------------------------------------------------------------------------------------
    def max_new_tokens(self, seconds: float) -> int:
        return int(max(4, min(self.max_target - 8, math.ceil(seconds * self.tokens_per_second) + 8)))

    def _generate(self, window: Window, languages: list[str], max_new: int, prompts: list[list[int]] | None = None):
        import ctranslate2

        starts = [self.sot_sequence(lang) for lang in languages]
        prompts = [(p or []) + s for p, s in zip(prompts, starts)] if prompts else starts
        encoded = window.encoded
        if len(languages) != encoded.shape[0]:  # one clip decoded under several prompts
            encoded = ctranslate2.StorageView.from_array(np.repeat(np.asarray(encoded), len(languages), axis=0))
        longest = max(len(p) for p in prompts)
        return self.model.generate(encoded, prompts, beam_size=1, max_length=min(self.max_target, longest + max_new),
                                   return_scores=True, return_no_speech_prob=True, suppress_tokens=self.suppress)

    def text_ids(self, result) -> list[int]:
        """The text tokens of a result: loops cut, nothing when the window is silence."""
        if result.no_speech_prob > NO_SPEECH:
            return []
        return trim_loops([i for i in result.sequences_ids[0] if i < self.eot])

    def decode_text(self, ids: list[int]) -> str:
        return self.tok.decode(ids).strip()

    def word_times(self, window: Window, index: int, language: str, ids: list[int]) -> list[tuple[str, float, float]]:
        """Words (decoded whole: a Vietnamese letter spans two byte-level tokens) with their start and end from
        the alignment heads' DTW, as faster-whisper computes them."""
        if not ids:
            return []
        import ctranslate2

        encoded = ctranslate2.StorageView.from_array(np.asarray(window.encoded)[index:index + 1])
        result = self.model.align(encoded, self.sot_sequence(language), [ids], [max(1, window.frames[index])])[0]
        pairs = np.array(result.alignments) if result.alignments else np.zeros((0, 2), dtype=int)
        if not len(pairs):
            return []
        jumps = np.pad(np.diff(pairs[:, 0]), (1, 0), constant_values=1).astype(bool)
        jump_times = pairs[jumps, 1] / (SAMPLE_RATE / self.fe.hop_length / 2)  # encoder positions → seconds
        groups: list[list[int]] = []
        for i, tid in enumerate(ids):
            if not groups or self.tok.id_to_token(tid).startswith("Ġ"):
                groups.append([i])
            else:
                groups[-1].append(i)
        words = []
        for g in groups:
            start = float(jump_times[min(g[0], len(jump_times) - 1)])
            end = float(jump_times[min(g[-1] + 1, len(jump_times) - 1)])
            text = self.tok.decode([ids[i] for i in g]).strip()
            if text:
                words.append((text, start, max(start, end)))
        return words


class CT2Transcriber(Transcribing):
    """Offline transcription on CTranslate2, with the interface of :class:`~modeling.whisper.decode.WhisperTranscriber`
    (``transcribe``, ``hear``). Clips longer than the model's window are cut at pauses into pieces of one window."""

    def __init__(self, whisper: CT2Whisper, *, languages: tuple[str, ...] = PAIR) -> None:
        self.whisper, self.languages = whisper, tuple(languages)
        self.window = whisper.window
        self.device = whisper.device

    def transcribe(self, arrays: list[np.ndarray], *, language: str | None = None,
                   task: str = "transcribe") -> list[Transcription]:
        check_transcribe(task)
        t0 = time.perf_counter()
        pieces = [(i, p) for i, a in enumerate(arrays) for p in split_at_pauses(a, self.window, SAMPLE_RATE)]
        w = self.whisper
        window = w.encode([p for _, p in pieces])
        if language:
            langs = [language] * len(pieces)
        else:
            langs = [max(p, key=p.get) for p in w.language_probs(window, self.languages)]
        results = w._generate(window, langs, w.max_new_tokens(self.window))
        texts: list[list[str]] = [[] for _ in arrays]
        first_lang: dict[int, str] = {}
        for (i, _), lang, r in zip(pieces, langs, results):
            texts[i].append(w.decode_text(w.text_ids(r)))
            first_lang.setdefault(i, lang)
        each = (time.perf_counter() - t0) / max(1, len(arrays))
        return [Transcription(" ".join(t for t in texts[i] if t), first_lang.get(i, self.languages[0]), each,
                              len(a) / SAMPLE_RATE) for i, a in enumerate(arrays)]

    def to(self, device, dtype=None) -> "CT2Transcriber":
        """CTranslate2 keeps the device it was loaded on (load it where it runs: ``--device``)."""
        return self
