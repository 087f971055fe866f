"""Text tokenizers in mBART-50's layout, shared by the families whose decoder is mBART (E2E and MT): the
pretrained tokenizer by name, or offline a small BPE trained on the corpus with mBART-50's special tokens and
language codes at the same places."""
from __future__ import annotations

from typing import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast
from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES

from dataset_builder.foundation.text import clean_text


#: What a scratch model's tokenizer is made of: BPE pieces, or one token per character.
UNITS = ("bpe", "char")


def check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"tokenizer unit {unit!r}: expected one of {', '.join(UNITS)}")


def add_special(tok, tokens: Sequence[str]):
    """Add ``tokens`` as special tokens (idempotent); the model's embeddings must be resized after."""
    missing = [t for t in tokens if t not in tok.get_vocab()]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    return tok


def train_text_tokenizer(texts: Iterable[str], vocab_size: int = 1000, extra_special: Sequence[str] = (),
                         unit: str = "bpe") -> PreTrainedTokenizerFast:
    """SentencePiece-style BPE (``▁`` word starts) with ``<s> <pad> </s> <unk>`` at 0–3 as in mBART, then
    mBART-50's language codes, ``<mask>`` and ``extra_special``. ``unit="char"``: no merges, one token per
    character of ``texts`` (``vocab_size`` unused) — what makes a scratch decoder spell what it hears."""
    check_unit(unit)
    if unit == "char":
        vocab_size = 1  # the trainer keeps the whole alphabet whatever the size: no room is left for merges
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Metaspace()
    bpe.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    bpe.train_from_iterator((clean_text(t) for t in texts if t), trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": [*FAIRSEQ_LANGUAGE_CODES, "<mask>"]})
    return add_special(tok, extra_special)


def check_encodable(tok, samples, fields: Sequence[str], where: str, *, tolerance: float = 0.01, warn=print) -> None:
    """Fail in one line, before training, when more than ``tolerance`` of the texts contain characters the
    tokenizer turns into ``<unk>`` (a model trained on them learns to emit ``<unk>``); below it, warn once."""
    unk = getattr(tok, "unk_token_id", None)
    if unk is None:
        return
    for field in fields:
        texts = [t for t in (getattr(s, field, None) for s in samples) if t]
        bad = [t for t, ids in zip(texts, tok(texts, add_special_tokens=False).input_ids) if unk in ids]
        if not bad:
            continue
        chars = sorted({c for c in bad[0] if not c.isspace() and unk in tok(c, add_special_tokens=False).input_ids})
        line = (f"{where}: the tokenizer cannot encode {len(bad)} of {len(texts)} {field}s (e.g. {bad[0][:60]!r}: "
                f"{' '.join(chars[:8]) or 'a character'} → <unk>)")
        if len(bad) > tolerance * len(texts):
            from .data import DataError

            raise DataError(f"{line}; use a tokenizer that covers this text (or a scratch one trained on it)")
        warn(f"warning: {line}; training goes on")


def load_text_tokenizer(name_or_path: str, extra_special: Sequence[str] = ()):
    return add_special(AutoTokenizer.from_pretrained(name_or_path), extra_special)
