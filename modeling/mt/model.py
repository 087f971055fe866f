"""Text MT into Vietnamese for the cascade: mBART-50 many-to-many (en_XX → vi_VN) by default, NLLB by name
(eng_Latn → vie_Latn), or a tiny mBART from a config offline. Both families take ``<src> text </s>`` and
decode after ``</s> <tgt>``, so one encoding serves all three."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import AutoModelForSeq2SeqLM, LogitsProcessorList, MBartConfig, MBartForConditionalGeneration

from ..e2e.tokenizer import load_text_tokenizer, train_text_tokenizer
from dataset_builder.foundation.text import clean_text, token_language, words
from ..whisper.decode import LoopGuard
from ..loading import load_or_fail

LANG_CODES = {"mbart": ("en_XX", "vi_VN"), "nllb": ("eng_Latn", "vie_Latn")}


def lang_codes(tok) -> tuple[str, str]:
    vocab = tok.get_vocab()
    return LANG_CODES["nllb"] if "vie_Latn" in vocab else LANG_CODES["mbart"]


def build_offline(texts, *, vocab_size: int = 1000, d_model: int = 96, layers: int = 2):
    tok = train_text_tokenizer(texts, vocab_size=vocab_size)
    cfg = MBartConfig(vocab_size=len(tok), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                      encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * d_model,
                      decoder_ffn_dim=2 * d_model, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
                      decoder_start_token_id=tok.eos_token_id, scale_embedding=True)
    model = MBartForConditionalGeneration(cfg)
    model.generation_config.forced_bos_token_id = None
    return model, tok


def load(name_or_path: str):
    model, tok = load_or_fail(name_or_path, lambda n: (AutoModelForSeq2SeqLM.from_pretrained(n),
                                                       load_text_tokenizer(n)))
    model.generation_config.forced_bos_token_id = None
    return model, tok


@dataclass
class MTBatcher:
    """Source rows ``<src> text </s>`` and decoder rows ``</s> <tgt> text </s>`` (the prompt not predicted)."""

    tokenizer: object
    max_tokens: int = 250

    def __post_init__(self) -> None:
        src, tgt = lang_codes(self.tokenizer)
        self.src = self.tokenizer.convert_tokens_to_ids(src)
        self.tgt = self.tokenizer.convert_tokens_to_ids(tgt)

    def ids(self, text: str) -> list[int]:
        return self.tokenizer(clean_text(text), add_special_tokens=False).input_ids[: self.max_tokens]

    def sources(self, texts: list[str]) -> dict:
        rows = [[self.src, *self.ids(t), self.tokenizer.eos_token_id] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def prompt(self) -> list[int]:
        return [self.tokenizer.eos_token_id, self.tgt]


class Translator:
    """Code-switched transcript → Vietnamese, the whole sentence or only its English spans in place."""

    def __init__(self, model, tokenizer, *, device: str | None = None, tokens_per_word: float = 3.0) -> None:
        self.model, self.tok = model.eval(), tokenizer
        self.device = device or next(model.parameters()).device
        self.model.to(self.device)
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
