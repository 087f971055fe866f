"""What every model family's decoding shares: a guard against repetition loops and the shape of a result.

The paper's 399.78 % WER came from unbounded generation that looped; every decoder here (Whisper, E2E, MT)
bounds its output by the input's length and runs :class:`LoopGuard`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import torch
from transformers import LogitsProcessor


def split_at_pauses(audio: np.ndarray, window_seconds: float, sample_rate: int = 16000,
                    frame_seconds: float = 0.02) -> list[np.ndarray]:
    """``audio`` in pieces of at most ``window_seconds``, each cut at the quietest 20 ms of the second half of its
    window. A model trained on utterances hears each piece as one; a cut at a fixed time goes through a word, and
    Whisper's sequential long-form decoding seeks by timestamp tokens that a small model trained without them
    never emits (it decoded short clips batched with long ones into noise)."""
    step = int(window_seconds * sample_rate)
    frame = max(1, int(frame_seconds * sample_rate))
    pieces, start = [], 0
    while len(audio) - start > step:
        lo = start + step // 2
        tail = audio[lo:start + step]
        k = len(tail) // frame
        energy = (tail[: k * frame].astype(np.float64).reshape(k, frame) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * frame + frame // 2
        pieces.append(audio[start:cut])
        start = cut
    pieces.append(audio[start:])
    return pieces


class LoopGuard(LogitsProcessor):
    """Forbid the token that would start another copy of an n-gram already repeated ``max_repeats`` times
    in a row at the end of the output (n up to ``max_ngram``). Repeats spread apart stay possible."""

    def __init__(self, prefix_length: int, max_ngram: int = 8, max_repeats: int = 3) -> None:
        self.prefix_length, self.max_ngram, self.max_repeats = prefix_length, max_ngram, max_repeats

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for b, row in enumerate(input_ids.tolist()):
            seq = row[self.prefix_length:]
            for n in range(1, self.max_ngram + 1):
                if len(seq) < n * self.max_repeats:
                    break
                tail = seq[-n:]
                if all(seq[-(k + 1) * n: len(seq) - k * n] == tail for k in range(1, self.max_repeats)):
                    scores[b, tail[0]] = -math.inf
        return scores


@dataclass
class Transcription:
    text: str
    language: str
    seconds: float  # wall time of decoding this clip (its share of the batch)
    audio_seconds: float


def check_transcribe(task: str) -> None:
    if task != "transcribe":
        raise ValueError("this Whisper is trained to transcribe code-switched speech; use the E2E or cascade "
                         "model for translation")


class Transcribing:
    """What every Whisper transcriber (transformers, CTranslate2) offers beyond ``transcribe``: the speech-system
    interface of ``modeling.registry`` — a transcript; Whisper does not translate."""

    def hear(self, arrays, *, translate: bool = True) -> list["Heard"]:
        return [Heard(t.text, language=t.language, seconds=t.seconds, audio_seconds=t.audio_seconds)
                for t in self.transcribe(arrays)]


class OnDevice:
    """A runner around a torch ``model`` that can move: the Space puts it on a GPU for one request and back."""

    model: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device, dtype: torch.dtype | None = None):
        self.model.to(device=device, dtype=dtype)
        return self


@dataclass
class Heard:
    """What a speech system made of one clip, whatever the family: the Space and ``vecs evaluate`` read this."""

    transcript: str
    translation: str = ""
    language: str = ""
    seconds: float = 0.0  # wall time of this clip's share of the batch
    audio_seconds: float = 0.0


def trim_loops(ids: list[int], max_ngram: int = 8, max_repeats: int = 3) -> list[int]:
    """:class:`LoopGuard`'s rule applied after the fact, for decoders that take no logits processor
    (CTranslate2): the output is cut where an n-gram starts its ``max_repeats + 1``-th copy in a row."""
    for end in range(1, len(ids) + 1):
        seq = ids[:end]
        for n in range(1, max_ngram + 1):
            if len(seq) < n * (max_repeats + 1):
                break
            tail = seq[-n:]
            if all(seq[-(k + 1) * n: len(seq) - k * n] == tail for k in range(1, max_repeats + 1)):
                return ids[: end - n]
    return ids
