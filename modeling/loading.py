"""Loading a model by Hub id or folder, with the one-line error a user sees when it cannot be loaded."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


class ModelError(ValueError):
    """A model that cannot be loaded or used, in one line."""


def load_or_fail(name_or_path: str, loader: Callable[[str], T], what: str = "model") -> T:
    """``loader(name_or_path)``, or :class:`ModelError` naming the model and the reason (never a traceback)."""
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local and not Path(name_or_path).expanduser().is_dir():
        raise ModelError(f"{what} {name_or_path!r} cannot be loaded: no such folder")
    try:
        return loader(name_or_path)
    except Exception as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ModelError(f"{what} {name_or_path!r} cannot be loaded: {type(exc).__name__}: {detail}") from None


def enable_checkpointing(model) -> None:
    """Activation (gradient) checkpointing under its transformers 5 name, or the older one."""
    (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
