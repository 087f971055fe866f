"""Synthetic code-switched "YouTube" for testing the factory offline (``vecs synth``).

``synthesize_corpus`` writes audio (m4a/webm), WebVTT sidecars, ``videos.json`` and ``truth.jsonl``;
``make_sentence`` / ``ENGLISH_VOCAB`` are the bilingual text generator and its vocabulary.
"""
from .corpus import synthesize_corpus, video_id, slugify
from .lexicon import ENGLISH_VOCAB, PROPER_NOUNS, make_sentence, make_utterance

__all__ = [
    "synthesize_corpus",
    "make_sentence",
    "make_utterance",
    "ENGLISH_VOCAB",
    "PROPER_NOUNS",
    "video_id",
    "slugify",
]
