"""Every model family VECS trains and serves, and the speech systems built from them, in one place.

The ``vecs`` command (``train``, ``evaluate``), the demo, the Space and the model cards read this module; none of
them lists families by hand. A new family is a sub-package of ``modeling`` with a training task (a
:class:`~modeling.trainer.TrainingTask` whose ``arguments`` and ``card`` say how it is trained and described) and a
loader for inference, plus one :class:`Family` entry below. Entries name their code by dotted path, so reading the
registry imports neither torch nor transformers (``vecs --help`` stays instant).
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .loading import ModelError


def _resolve(dotted: str):
    module, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Family:
    name: str  # `vecs train NAME`
    title: str
    task: str  # the TrainingTask subclass
    loader: str  # name_or_path -> an inference object (hear(arrays) for speech families)
    model_types: tuple[str, ...]  # config.json model_type values of its checkpoints
    speech: bool  # reads audio (MT reads text)

    def task_class(self):
        return _resolve(self.task)

    @property
    def arguments(self) -> type:
        return self.task_class().arguments

    def train(self, args) -> dict:
        from .trainer import run_training

        return run_training(self.task_class()(args))

    def main(self, argv: Sequence[str] | None = None) -> int:
        """The family's command line (``vecs train NAME …``, ``scripts/train_NAME.py``)."""
        from .trainer import script_main

        return script_main(self.task_class(), argv)

    def load(self, name_or_path: str, **kwargs):
        return _resolve(self.loader)(name_or_path, **kwargs)

    def render_card(self, folder: Path, *, args, summary: dict, metrics: dict | None = None,
                    split: str | None = None) -> Path:
        """The family's model card for a trained run, e.g. again with test-split scores after evaluation."""
        return self.task_class()(args).render_card(folder, summary, metrics=metrics, split=split)


WHISPER = Family("whisper", "Whisper: verbatim code-switched transcripts", "modeling.whisper.train:WhisperTask",
                 "modeling.whisper.decode:load_transcriber", ("whisper",), speech=True)
E2E = Family("e2e", "End-to-end speech translation (wav2vec2 / XLS-R + mBART-50): transcript and Vietnamese",
             "modeling.e2e.train:E2ETask", "modeling.e2e.decode:load_translator", ("speech-encoder-decoder",),
             speech=True)
MT = Family("mt", "Text MT into Vietnamese (mBART-50 or NLLB): the cascade's second half", "modeling.mt.train:MTTask",
            "modeling.mt.decode:load_translator", ("mbart", "m2m_100", "marian"), speech=False)

FAMILIES: dict[str, Family] = {f.name: f for f in (WHISPER, E2E, MT)}


def family_of(name_or_path: str) -> Family:
    """The family of a checkpoint (Hub id or folder), from its ``config.json``; one clear line otherwise."""
    local = Path(name_or_path) / "config.json"
    if (Path(name_or_path) / "model.bin").exists():  # a CTranslate2 conversion: Whisper is the family it serves
        return WHISPER
    try:
        if local.exists():
            model_type = json.loads(local.read_text()).get("model_type")
        else:
            from transformers import AutoConfig

            model_type = AutoConfig.from_pretrained(name_or_path).model_type
    except Exception as exc:
        raise ModelError(f"model {name_or_path!r} cannot be loaded: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from None
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(f"{t} ({f.name})" for f in FAMILIES.values() for t in f.model_types)
    raise ModelError(f"model {name_or_path!r}: model type {model_type!r} is not one VECS serves (known: {known})")


@dataclass(frozen=True)
class System:
    """A speech system visitors and ``vecs evaluate`` compare: models of the families above, one per slot
    (a slot names which configured model fills it: the Space's ``VECS_<SLOT>_MODEL``)."""

    key: str
    label: str
    slots: tuple[tuple[str, str], ...]  # (slot, family)
    compose: str | None = None  # builds the system from its slots' loaded models; None: the one model is it

    def build(self, loaded: Sequence) -> object:
        return _resolve(self.compose)(*loaded) if self.compose else loaded[0]

    @property
    def translates(self) -> bool:
        return any(family in ("e2e", "mt") for _, family in self.slots)


SYSTEMS: tuple[System, ...] = (
    System("baseline", "Whisper (off-the-shelf)", (("baseline", "whisper"),)),
    System("whisper", "VECS Whisper", (("whisper", "whisper"),)),
    System("e2e", "E2E", (("e2e", "e2e"),)),
    System("cascade", "Cascade", (("whisper", "whisper"), ("mt", "mt")), compose="modeling.cascade:spans_cascade"),
)


def system(label_or_key: str) -> System:
    for s in SYSTEMS:
        if label_or_key in (s.key, s.label):
            return s
    raise KeyError(f"no system {label_or_key!r} (have {', '.join(s.label for s in SYSTEMS)})")


def load_system(sys_: System, models: dict[str, str], load: Callable[[str, str], object] | None = None):
    """The system on the models named per slot; ``load(family, name)`` may be a cache (the Space's)."""
    load = load or (lambda family, name: FAMILIES[family].load(name))
    return sys_.build([load(family, models[slot]) for slot, family in sys_.slots])
