"""The online processor: audio arrives in small chunks, the growing buffer is re-decoded, LocalAgreement-2
commits what two hypotheses agree on, the buffer is trimmed at committed words, and committed text is carried
as the prompt. No language is pinned for the session (pinning it is what breaks SimulStreaming on code-switched
speech): each window's language comes from the pair.

Composes small parts with one role each, as ufal/whisper_streaming does: a :class:`Backend` (the model),
:class:`HypothesisBuffer` (agreement), :class:`LanguageTracker` (hysteresis), an optional VAD.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from dataset_builder.foundation.config import SAMPLE_RATE

from .hypothesis import HypothesisBuffer, Word
from .language import LanguageTracker, fragment_language


def prompt_room(max_target_positions: int, max_new_tokens: int) -> int:
    """Prompt tokens the decoder has room for: at most half its positions (as OpenAI's decoding keeps) and never
    so many that the prompt, the 4 start tokens and the answer pass ``max_target_positions`` — 200 characters of
    unusual text are hundreds of byte-level tokens, and generate() refuses the whole window then."""
    return min(max_target_positions // 2 - 1, max_target_positions - max_new_tokens - 5)


@dataclass
class Decoded:
    words: list[Word]  # times relative to the audio given to the backend
    language_probs: dict[str, float] = field(default_factory=dict)


class Backend(Protocol):
    def decode(self, audio: np.ndarray, *, prompt: str, languages: tuple[str, ...]) -> Decoded: ...


@dataclass
class Commit:
    text: str
    language: str
    start: float
    end: float
    latency: float  # stream time when committed minus the audio time of its last word


@dataclass
class StreamUpdate:
    commits: list[Commit]
    tentative: str
    language: str


def drop_repeats(words: list[Word], max_repeats: int = 3, max_ngram: int = 6) -> list[Word]:
    """Cut a hypothesis where an n-gram starts repeating more than ``max_repeats`` times in a row."""
    keys = [w.key() for w in words]
    for i in range(len(keys)):
        for n in range(1, max_ngram + 1):
            block = keys[i:i + n]
            if len(block) < n:
                break
            reps = 1
            while keys[i + reps * n: i + (reps + 1) * n] == block:
                reps += 1
            if reps > max_repeats:
                return words[: i + max_repeats * n]
    return words


class OnlineProcessor:
    def __init__(self, backend: Backend, *, languages: tuple[str, ...] = ("vi", "en"), trim_seconds: float = 15.0,
                 padding: np.ndarray | None = None, padding_cutoff: float = 3.0,
                 vad: Callable[[np.ndarray], list[tuple[float, float]]] | None = None, flush_silence: float = 0.6,
                 tracker: LanguageTracker | None = None, prompt_chars: int = 200,
                 clock: Callable[[], float] | None = None) -> None:
        self.backend, self.languages = backend, languages
        self.trim_seconds, self.padding, self.padding_cutoff = trim_seconds, padding, padding_cutoff
        self.vad, self.flush_silence = vad, flush_silence
        self.tracker = tracker or LanguageTracker(languages)
        self.prompt_chars = prompt_chars
        self.clock = clock
        self.audio = np.zeros(0, dtype=np.float32)
        self.offset = 0.0  # stream time of audio[0]
        self.received = 0.0
        self.hyp = HypothesisBuffer()
        self.committed: list[Commit] = []
        self._last_language = self.tracker.current

    # -- input ---------------------------------------------------------------------------------------------
    def insert_audio_chunk(self, samples: np.ndarray) -> None:
        self.audio = np.concatenate([self.audio, np.asarray(samples, dtype=np.float32)])
        self.received += len(samples) / SAMPLE_RATE

    # -- one step ------------------------------------------------------------------------------------------
    def process_iter(self) -> StreamUpdate:
        t0 = time.perf_counter()
        speech = self.vad(self.audio) if self.vad is not None else [(0.0, len(self.audio) / SAMPLE_RATE)]
        if not speech:  # no text on silence; keep at most a little silence as left context
            self._cut(max(0.0, len(self.audio) / SAMPLE_RATE - 1.0))
            return StreamUpdate([], self._tentative_text(), self.tracker.current)
        audio, pad = self.audio, 0.0
        if self.padding is not None and len(audio) / SAMPLE_RATE < self.padding_cutoff:
            pad = len(self.padding) / SAMPLE_RATE  # universal padding: anchors short buffers, removed below
            audio = np.concatenate([self.padding, audio])
        decoded = self.backend.decode(audio, prompt=self._prompt(), languages=self.languages)
        language = self.tracker.update(decoded.language_probs) if decoded.language_probs else self.tracker.current
        words = [Word(w.start - pad, w.end - pad, w.text, language) for w in decoded.words if w.end - pad > 0.05]
        self.hyp.insert(drop_repeats(words), self.offset)
        commits = self._commit(self.hyp.flush(), t0)
        buffered = len(self.audio) / SAMPLE_RATE
        silence_from = speech[-1][1]
        if self.vad is not None and buffered - silence_from >= self.flush_silence:
            # a pause: what is still tentative is final, and the buffer starts again after the pause
            commits += self._commit(self.hyp.tentative(), t0)
            self.hyp.remember(self.hyp.tentative())
            self.hyp.buffer = []
            self.hyp.last_committed_time = self.offset + silence_from
            self._cut(silence_from)
        elif buffered > self.trim_seconds and self.hyp.committed_in_buffer:
            self._cut(self.hyp.committed_in_buffer[-1].end - self.offset)
        if len(self.audio) / SAMPLE_RATE > self.trim_seconds + 5.0:  # nothing agreed for long: bound the buffer
            self._cut(len(self.audio) / SAMPLE_RATE - self.trim_seconds)
        return StreamUpdate(commits, self._tentative_text(), language)

    def finish(self) -> StreamUpdate:
        """End of stream: the tentative words become final."""
        commits = self._commit(self.hyp.tentative(), time.perf_counter())
        self.hyp.buffer = []
        return StreamUpdate(commits, "", self.tracker.current)

    # -- helpers -------------------------------------------------------------------------------------------
    def _now(self, t0: float) -> float:
        return self.clock() if self.clock is not None else self.received + (time.perf_counter() - t0)

    def _commit(self, words: list[Word], t0: float) -> list[Commit]:
        if not words:
            return []
        now = self._now(t0)
        groups: list[list[Word]] = []
        for w in words:
            if groups and groups[-1][-1].language == w.language:
                groups[-1].append(w)
            else:
                groups.append([w])
        out = []
        for g in groups:
            text = " ".join(w.text for w in g)
            lang = fragment_language(text, g[0].language, self._last_language)
            self._last_language = lang
            out.append(Commit(text, lang, round(g[0].start, 3), round(g[-1].end, 3), round(now - g[-1].end, 3)))
        self.committed += out
        return out

    def _cut(self, seconds: float) -> None:
        n = int(round(seconds * SAMPLE_RATE))
        if n <= 0:
            return
        self.audio = self.audio[n:]
        self.offset += n / SAMPLE_RATE
        self.hyp.pop_committed(self.offset)

    def _prompt(self) -> str:
        return " ".join(c.text for c in self.committed)[-self.prompt_chars:]

    def _tentative_text(self) -> str:
        return " ".join(w.text for w in self.hyp.tentative())
