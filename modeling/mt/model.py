"""Text MT into Vietnamese for the cascade: mBART-50 many-to-many (en_XX → vi_VN) by default, NLLB by name
(eng_Latn → vie_Latn), or a tiny mBART from a config offline. Both families take ``<src> text </s>`` and
decode after ``</s> <tgt>``, so one encoding serves all three."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoModelForSeq2SeqLM, MBartConfig, MBartForConditionalGeneration

from dataset_builder.foundation.text import clean_text

from ..loading import load_or_fail
from ..text_tokenizer import load_text_tokenizer, train_text_tokenizer

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
