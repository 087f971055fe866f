"""The one text normalizer, shared by pre-labeling, export, training and metrics.

Vietnamese arrives in NFD from some sources and with zero-width or non-breaking spaces from subtitle tools;
the same words must compare equal everywhere, so every stage cleans text through these functions.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_text(text: str | None) -> str:
    """NFC, invisible characters removed, every kind of space collapsed to one: lossless for the words."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


_PUNCT = re.compile(r"[^\w\s']|_|(?<!\w)'|'(?!\w)")


def normalize_for_scoring(text: str | None) -> str:
    """What error rates compare: the cleaned text, lower-cased, punctuation removed (apostrophes inside
    words kept: "don't"). Vietnamese is written syllable by syllable, so its words here are syllables."""
    return _SPACES.sub(" ", _PUNCT.sub(" ", clean_text(text).lower())).strip()


def loop_key(text: str) -> str:
    """A form of ``text`` for spotting repeats: case and punctuation do not make a new sentence."""
    text = clean_text(text).lower()
    return re.sub(r"[^\w\s]", "", text).strip()


# -- language of a word ---------------------------------------------------------------------------------
# Vietnamese orthography: tells a Vietnamese syllable from an English word without a dictionary, because
# Vietnamese spelling is closed (onset + vowel cluster + final, and p/t/c/ch finals need a sharp or heavy tone).

_ONSETS = sorted(
    ["", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh", "p", "ph",
     "qu", "r", "s", "t", "th", "tr", "v", "x"], key=len, reverse=True)
_FINALS = ["", "c", "ch", "m", "n", "ng", "nh", "p", "t"]
_CLUSTERS = set(
    "a ă â e ê i o ô ơ u ư y "
    "ai ao au ay âu ây eo êu ia iu iê oa oă oe oi oo ôi ơi ua uâ uê ui uô uơ uy ưa ưi ươ ưu yê "
    "iêu oai oay oao oeo uây uôi uya uyê uyu ươi ươu yêu".split())
_TONE_MARKS = {"\u0300": "huyền", "\u0301": "sắc", "\u0303": "ngã", "\u0309": "hỏi", "\u0323": "nặng"}


def looks_vietnamese(word: str) -> bool:
    """True if ``word`` is spelled like one Vietnamese syllable ("mình", "nghiêng"); False for "team", "hot"."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(tones) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
    if not base or not all(c.isalpha() for c in base):
        return False
    tone = _TONE_MARKS[tones[0]] if tones else None
    for onset in _ONSETS:
        if not base.startswith(onset):
            continue
        rest = base[len(onset):]
        for final in _FINALS:
            if final and not rest.endswith(final):
                continue
            nucleus = rest[: len(rest) - len(final)]
            if nucleus in _CLUSTERS:
                if final in ("c", "ch", "p", "t") and tone not in ("sắc", "nặng"):
                    continue
                return True
    return False


_VI_LETTERS = set("đăâêôơư")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


@lru_cache(maxsize=1 << 16)  # a corpus repeats its words: decide each spelling once
def word_language(word: str) -> str:
    """``vi`` or ``en`` for one word: Vietnamese letters or tones, or a valid Vietnamese syllable, mean vi.

    Syllables valid in both spellings ("ban", "con") count as Vietnamese, the matrix language here.
    """
    w = unicodedata.normalize("NFC", word.lower())
    if any(c in _VI_LETTERS for c in w) or any(c in _TONE_MARKS for c in unicodedata.normalize("NFD", w)):
        return "vi"
    return "vi" if looks_vietnamese(w) else "en"


def token_language(token: str) -> str:
    """The language of one whitespace token as written ("meeting," → en), "" when it holds no letters."""
    core = "".join(words(token))
    return word_language(core) if core else ""


def words(text: str) -> list[str]:
    return _WORD.findall(clean_text(text))


def en_ratio(text: str) -> float:
    """Share of the words that are English."""
    ws = words(text)
    return sum(word_language(w) == "en" for w in ws) / len(ws) if ws else 0.0


def cmi(text: str) -> float:
    """Code-mixing index (Das & Gambäck 2014): 100 · (1 − dominant-language words / words); 0 if monolingual."""
    ws = words(text)
    if not ws:
        return 0.0
    n_en = sum(word_language(w) == "en" for w in ws)
    return 100.0 * (1.0 - max(n_en, len(ws) - n_en) / len(ws))
