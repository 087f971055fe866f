"""MT inference for the cascade: code-switched transcript → Vietnamese, the whole sentence or only its English
spans in place, bounded by the input's length and loop-guarded."""
from __future__ import annotations

import math

import torch
from transformers import LogitsProcessorList

from dataset_builder.foundation.text import clean_text, token_language, words

from ..decoding import LoopGuard, OnDevice
from .model import MTBatcher, load


class Translator(OnDevice):
    """Code-switched transcript → Vietnamese, the whole sentence or only its English spans in place."""

    def __init__(self, model, tokenizer, *, device: str | None = None, tokens_per_word: float = 3.0) -> None:
        self.model, self.tok = model.eval(), tokenizer
        if device is not None:
            self.model.to(device)
        self.batcher = MTBatcher(tokenizer)
        self.tokens_per_word = tokens_per_word

    @torch.no_grad()
    def translate(self, texts: list[str]) -> list[str]:
        todo = [i for i, t in enumerate(texts) if clean_text(t)]
        out = [""] * len(texts)
        if not todo:
            return out
        src = self.batcher.sources([texts[i] for i in todo])
        prompt = torch.tensor([self.batcher.prompt()] * len(todo), device=self.device)
        longest = max(len(words(texts[i])) for i in todo)
        cap = self.model.config.max_position_embeddings - 4
        ids = self.model.generate(
            input_ids=src["input_ids"].to(self.device), attention_mask=src["attention_mask"].to(self.device),
            decoder_input_ids=prompt, num_beams=1, do_sample=False,
            max_new_tokens=int(min(cap, math.ceil(longest * self.tokens_per_word) + 8)),
            logits_processor=LogitsProcessorList([LoopGuard(prefix_length=2)]))
        for i, text in zip(todo, self.tok.batch_decode(ids[:, 2:], skip_special_tokens=True)):
            out[i] = clean_text(text)
        return out

    def translate_spans(self, texts: list[str]) -> list[str]:
        """Keep the Vietnamese words, replace each run of English words by its translation."""
        pieces: list[list[tuple[bool, str]]] = []
        for text in texts:
            runs: list[tuple[bool, str]] = []
            for w in clean_text(text).split():
                is_en = token_language(w) == "en"
                if runs and runs[-1][0] == is_en:
                    runs[-1] = (is_en, runs[-1][1] + " " + w)
                else:
                    runs.append((is_en, w))
            pieces.append(runs)
        spans = [s for runs in pieces for is_en, s in runs if is_en]
        translated = iter(self.translate(spans)) if spans else iter(())
        return [" ".join(next(translated) or s if is_en else s for is_en, s in runs) for runs in pieces]


def load_translator(name_or_path: str, *, languages=None, runtime=None) -> Translator:
    """A :class:`Translator` on a saved model (Hub id or folder), on ``runtime``'s device and dtype; one clear line
    if it cannot be loaded. ``languages`` (the pair the speech side serves) changes nothing: it always translates
    into Vietnamese. Text MT runs on transformers whatever the speech backend."""
    from ..runtime import Runtime

    model, tok = load(name_or_path)
    return Translator((runtime or Runtime()).place(model), tok)
