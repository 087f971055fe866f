"""A Whisper tokenizer trained on the corpus text, for runs that cannot download ``openai/whisper-*``.

Whisper finds a language token as ``<|startoftranscript|> + 1 + index`` in its own language table, and
timestamps as the ids after the last special token, so the special tokens are added in Whisper's exact order:
``<|endoftext|>``, ``<|startoftranscript|>``, every language, ``<|translate|>``, ``<|transcribe|>``,
``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``, ``<|notimestamps|>``, then ``<|0.00|>`` … ``<|30.00|>``.
"""
from __future__ import annotations

import json
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AddedToken
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.models.whisper.tokenization_whisper import LANGUAGES, WhisperTokenizer

from dataset_builder.foundation.text import clean_text

from ..text_tokenizer import check_unit

TASK_TOKENS = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
               "<|notimestamps|>"]
TIMESTAMPS = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]


def special_tokens() -> list[str]:
    return ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in LANGUAGES], *TASK_TOKENS]


def train_whisper_tokenizer(texts: Iterable[str], vocab_size: int = 1200, unit: str = "bpe") -> WhisperTokenizer:
    """Byte-level BPE on ``texts`` with Whisper's special and timestamp tokens appended in Whisper's order.

    ``unit="char"`` keeps one token per character (``vocab_size`` unused): a scratch model then spells English
    words letter by letter from what it hears instead of recalling whole-word tokens it memorized, and its CTC
    head gets targets as fine as the audio frames allow."""
    check_unit(unit)
    texts = [" " + clean_text(t) for t in texts if t]
    vocab, merges = _characters(texts) if unit == "char" else _bpe(texts, vocab_size)
    tok = WhisperTokenizer(vocab=vocab, merges=merges)
    specials = special_tokens()
    tok.add_special_tokens({"additional_special_tokens": [
        AddedToken(t, special=True, normalized=False) for t in specials[1:]]}, replace_extra_special_tokens=True)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TIMESTAMPS])
    tok.pad_token = "<|endoftext|>"
    tok.set_prefix_tokens(language="vi", task="transcribe", predict_timestamps=False)
    check_layout(tok)
    return tok


def _bpe(texts: list[str], vocab_size: int) -> tuple[dict, list]:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    merges = json.loads(bpe.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    return bpe.get_vocab(), merges


def _characters(texts: list[str]) -> tuple[dict, list]:
    """The 256 byte symbols, then merges that rebuild each multi-byte character of ``texts`` from its UTF-8 bytes
    (and nothing else: a merge's left side is an unfinished character, so no merge spans two characters)."""
    symbol = bytes_to_unicode()
    vocab = {symbol[b]: b for b in range(256)}
    merges: list[tuple[str, str]] = []
    for char in sorted({c for t in texts for c in t}):
        parts = [symbol[b] for b in char.encode("utf-8")]
        for k in range(1, len(parts)):
            left, merged = "".join(parts[:k]), "".join(parts[:k + 1])
            if merged not in vocab:
                merges.append((left, parts[k]))
                vocab[merged] = len(vocab)
    return vocab, merges


def check_layout(tok: WhisperTokenizer) -> None:
    """Fail loudly if the ids do not follow Whisper's layout (generation would pick wrong languages)."""
    sot = tok.convert_tokens_to_ids("<|startoftranscript|>")
    for i, code in enumerate(LANGUAGES):
        if tok.convert_tokens_to_ids(f"<|{code}|>") != sot + 1 + i:
            raise ValueError(f"tokenizer: <|{code}|> is not at <|startoftranscript|> + {1 + i}")
    no_ts = tok.convert_tokens_to_ids("<|notimestamps|>")
    if tok.convert_tokens_to_ids("<|0.00|>") != no_ts + 1 or tok.all_special_ids[-1] != no_ts:
        raise ValueError("tokenizer: timestamp tokens must follow <|notimestamps|>")
