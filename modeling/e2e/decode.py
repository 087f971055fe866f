"""E2E inference: the same clip transcribed (``<2transcribe>``) or translated (``<2translate>``), generation
bounded by the clip's duration and guarded against loops like Whisper's."""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from transformers import LogitsProcessorList

from dataset_builder.foundation.config import SAMPLE_RATE

from ..decoding import Heard, LoopGuard, OnDevice, Transcription
from .model import prompt_ids


class E2ETranslator(OnDevice):
    def __init__(self, model, feature_extractor, tokenizer, *, tokens_per_second: float | None = None,
                 device: str | None = None) -> None:
        self.model, self.fe, self.tok = model.eval(), feature_extractor, tokenizer
        if device is not None:
            self.model.to(device)
        self.tokens_per_second = tokens_per_second or getattr(model.generation_config, "vecs_tokens_per_second",
                                                              None) or 12.0

    @torch.no_grad()
    def run(self, arrays: list[np.ndarray], task: str = "st") -> list[Transcription]:
        t0 = time.perf_counter()
        durations = [len(a) / SAMPLE_RATE for a in arrays]
        inputs = self.fe(arrays, sampling_rate=SAMPLE_RATE, padding=True, return_attention_mask=True,
                         return_tensors="pt")
        prompt = torch.tensor([prompt_ids(self.tok, task)] * len(arrays), device=self.device)
        cap = self.model.config.decoder.max_position_embeddings - 4
        ids = self.model.generate(
            inputs.input_values.to(self.device, next(self.model.parameters()).dtype),
            attention_mask=inputs.attention_mask.to(self.device),
            decoder_input_ids=prompt, max_new_tokens=int(min(cap, math.ceil(max(durations) * self.tokens_per_second) + 8)),
            num_beams=1, do_sample=False, logits_processor=LogitsProcessorList([LoopGuard(prefix_length=3)]))
        texts = self.tok.batch_decode(ids[:, prompt.shape[1]:], skip_special_tokens=True)
        each = (time.perf_counter() - t0) / len(arrays)
        return [Transcription(t.strip(), "vi", each, d) for t, d in zip(texts, durations)]

    def hear(self, arrays: list[np.ndarray], *, translate: bool = True) -> list[Heard]:
        """The speech-system interface (``modeling.registry``): the transcript and, unless told not to, the
        translation of the same clips, with their summed latency."""
        asr = self.run(arrays, "asr")
        st = self.run(arrays, "st") if translate else [None] * len(asr)
        return [Heard(a.text, s.text if s else "", a.language, a.seconds + (s.seconds if s else 0.0), a.audio_seconds)
                for a, s in zip(asr, st)]


def load_translator(name_or_path: str, *, languages=None, runtime=None) -> E2ETranslator:
    """An :class:`E2ETranslator` on a saved E2E model, on ``runtime``'s device and dtype; one clear line if it
    cannot be loaded. ``languages`` (the pair a speech system serves) changes nothing: it transcribes what it
    hears and translates to Vietnamese."""
    from ..loading import ModelError
    from ..runtime import Runtime
    from .model import load

    runtime = runtime or Runtime()
    if runtime.backend == "ct2":
        raise ModelError(f"--backend ct2: {name_or_path!r} is an E2E model; CTranslate2 serves Whisper models only")
    model, fe, tok = load(name_or_path)
    return E2ETranslator(runtime.place(model), fe, tok)
