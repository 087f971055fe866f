"""LocalAgreement-2 (ufal/whisper_streaming): a word is committed once two consecutive hypotheses of the
growing buffer agree on it, so text shown as final never changes."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Word:
    start: float  # seconds of stream time
    end: float
    text: str
    language: str = ""

    def key(self) -> str:
        return self.text.lower().strip(".,!?;:…\"'")


class HypothesisBuffer:
    """Holds the last hypothesis; :meth:`flush` commits the prefix the new one shares with it."""

    def __init__(self, overlap_words: int = 5) -> None:
        self.committed_in_buffer: list[Word] = []
        self.recent: list[Word] = []  # the last committed words, kept across trims, for the echo check
        self.buffer: list[Word] = []  # the previous hypothesis, not yet agreed on
        self.new: list[Word] = []
        self.last_committed_time = 0.0
        self.overlap_words = overlap_words

    def insert(self, words: list[Word], offset: float) -> None:
        """Add a hypothesis whose times are relative to ``offset``; words before the last commit are dropped
        and a repeat of the committed tail at its start (the prompt echoed back) is removed."""
        new = [Word(w.start + offset, w.end + offset, w.text, w.language) for w in words]
        self.new = [w for w in new if w.start > self.last_committed_time - 0.1]
        if self.new and self.recent:
            # near the last commit one repeated word is an echo; further away (word times from cross-attention
            # can be off by seconds, and a trim may keep audio of committed words) it takes two to be sure
            near = abs(self.new[0].start - self.last_committed_time) < 1.0
            tail = [w.key() for w in self.recent]
            for n in range(min(len(tail), len(self.new), self.overlap_words), 0 if near else 1, -1):
                if tail[-n:] == [w.key() for w in self.new[:n]]:
                    self.new = self.new[n:]
                    break

    def flush(self) -> list[Word]:
        """Commit the longest common prefix of the new and the previous hypothesis."""
        committed = []
        while self.new and self.buffer and self.new[0].key() == self.buffer[0].key():
            w = self.new.pop(0)
            self.buffer.pop(0)
            committed.append(w)
            self.last_committed_time = w.end
        self.buffer = self.new
        self.new = []
        self.committed_in_buffer.extend(committed)
        self.remember(committed)
        return committed

    def remember(self, committed: list[Word]) -> None:
        self.recent = (self.recent + committed)[-2 * self.overlap_words:]

    def pop_committed(self, time: float) -> None:
        while self.committed_in_buffer and self.committed_in_buffer[0].end <= time:
            self.committed_in_buffer.pop(0)

    def tentative(self) -> list[Word]:
        return list(self.buffer)
