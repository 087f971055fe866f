"""Tiny untrained models saved as folders, standing in for the Space's Hub repos (built from configs, offline).

The Whisper stand-ins are made to babble readable words: the output rows of end-of-text and of byte-fragment tokens
and word-internal pieces are zeroed and the rest scaled up, so an untrained model emits whole words (noise,
bounded by the duration rule) and the streaming UI has text to show."""
from __future__ import annotations

from pathlib import Path

TEXTS = ["mình có một meeting rất quan trọng với team", "deadline của project này là thứ sáu",
         "chúng ta cần review lại cái design", "okay bye bye see you tomorrow"] * 10


def babble(model, tok) -> None:
    import torch

    last_text = tok.convert_tokens_to_ids("<|endoftext|>")
    pieces = [tok.decode([i]) if i < last_text else "" for i in range(model.config.vocab_size)]
    keep = torch.tensor([p.startswith(" ") and p.strip().isalpha() for p in pieces])  # whole words only
    with torch.no_grad():
        w = model.get_output_embeddings().weight
        w[~keep] = 0
        w[keep] *= 4


def save_tiny_models(root: Path) -> dict[str, str]:
    import torch

    from modeling.e2e.model import build_offline as build_e2e
    from modeling.mt.model import build_offline as build_mt
    from modeling.whisper.model import build_offline as build_whisper

    root = Path(root)
    torch.manual_seed(0)
    paths = {}
    for name, seed in (("whisper", 0), ("baseline", 1)):
        torch.manual_seed(seed)
        model, processor = build_whisper(TEXTS, input_seconds=8, vocab_size=300, d_model=64, encoder_layers=1,
                                         decoder_layers=1)
        babble(model, processor.tokenizer)
        model.save_pretrained(root / name)
        processor.save_pretrained(root / name)
        paths[name] = str(root / name)
    model, fe, tok = build_e2e(TEXTS, vocab_size=300, layers=1)
    for part in (model, fe, tok):
        part.save_pretrained(root / "e2e")
    paths["e2e"] = str(root / "e2e")
    model, tok = build_mt(TEXTS, vocab_size=300, d_model=64, layers=1)
    model.save_pretrained(root / "mt")
    tok.save_pretrained(root / "mt")
    paths["mt"] = str(root / "mt")
    return paths
