"""Scores for code-switched ASR and speech translation, computed with jiwer and sacrebleu directly
(``evaluate.load`` needs the Hub). Every text passes through the one normalizer first."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import jiwer
import numpy as np
import sacrebleu

from dataset_builder.foundation.text import normalize_for_scoring, word_language


def _pairs(refs: Sequence[str], hyps: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} predictions")
    r = [normalize_for_scoring(x) for x in refs]
    h = [normalize_for_scoring(x) for x in hyps]
    keep = [i for i, x in enumerate(r) if x]  # an empty reference has no error rate
    return [r[i] for i in keep], [h[i] for i in keep]


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate; Vietnamese words are syllables, so this is syllable-level for Vietnamese."""
    r, h = _pairs(refs, hyps)
    return jiwer.wer(r, h) if r else 0.0


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    r, h = _pairs(refs, hyps)
    return jiwer.cer(r, h) if r else 0.0


def language_error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float | int]:
    """Error rate on the reference's English words and on its Vietnamese words separately (PIER-style):
    a substitution or deletion counts against the language of the reference word it hits; insertions are
    charged to the language of the nearest reference word before them (the first one if none)."""
    r, h = _pairs(refs, hyps)
    errors = {"en": 0, "vi": 0}
    counts = {"en": 0, "vi": 0}
    if not r:
        return {"en_error_rate": 0.0, "vi_error_rate": 0.0, "en_words": 0, "vi_words": 0}
    out = jiwer.process_words(r, h)
    for ref_words, chunks in zip(out.references, out.alignments):
        langs = [word_language(w) for w in ref_words]
        for lang in langs:
            counts[lang] += 1
        for chunk in chunks:
            if chunk.type in ("substitute", "delete"):
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    errors[langs[i]] += 1
            elif chunk.type == "insert" and langs:
                at = max(0, chunk.ref_start_idx - 1)
                errors[langs[min(at, len(langs) - 1)]] += chunk.hyp_end_idx - chunk.hyp_start_idx
    return {
        "en_error_rate": errors["en"] / counts["en"] if counts["en"] else 0.0,
        "vi_error_rate": errors["vi"] / counts["vi"] if counts["vi"] else 0.0,
        "en_words": counts["en"], "vi_words": counts["vi"],
    }


_TOKEN = re.compile(r"\S+")


def is_loop(hyp: str, ref: str, *, ngram: int = 3, repeats: int = 4, max_ratio: float = 2.0) -> bool:
    """A hallucination loop: some word 3-gram occurs 4+ times, or the output is over 2x the reference."""
    words = _TOKEN.findall(normalize_for_scoring(hyp))
    ref_len = len(_TOKEN.findall(normalize_for_scoring(ref)))
    if ref_len and len(words) > max_ratio * ref_len:
        return True
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - ngram + 1):
        key = tuple(words[i:i + ngram])
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= repeats:
            return True
    return False


def translation_scores(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    """Corpus BLEU and chrF with their sacrebleu signatures (so numbers are comparable across papers)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} predictions")
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(list(hyps), [list(refs)])
    c = chrf.corpus_score(list(hyps), [list(refs)])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


@dataclass
class Latency:
    """Decode time per sample and the real-time factor (decode seconds per audio second)."""

    seconds: list[float]
    audio_seconds: list[float]

    def summary(self) -> dict:
        if not self.seconds:
            return {"latency_mean_ms": None, "latency_p95_ms": None, "rtf": None}
        s = np.asarray(self.seconds)
        total_audio = float(sum(self.audio_seconds)) or math.nan
        return {"latency_mean_ms": round(1000 * float(s.mean()), 1),
                "latency_p95_ms": round(1000 * float(np.percentile(s, 95)), 1),
                "rtf": round(float(s.sum()) / total_audio, 4)}


def asr_scores(refs: Sequence[str], hyps: Sequence[str]) -> dict:
    loops = [is_loop(h, r) for r, h in zip(refs, hyps)]
    return {"wer": round(wer(refs, hyps), 4), "cer": round(cer(refs, hyps), 4),
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in language_error_rates(refs, hyps).items()},
            "loop_rate": round(sum(loops) / len(loops), 4) if loops else 0.0, "samples": len(refs)}
