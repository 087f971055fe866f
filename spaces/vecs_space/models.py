"""The Space's models: loaded once per process through the model registry and shared by every visitor.

ZeroGPU-safe: transformers models load on the CPU at start and are moved to the GPU only inside a request (a
``@spaces.GPU`` handler, :meth:`Models.placed`) and back to the CPU when it ends, so no CUDA state outlives a
request. CTranslate2 models (``VECS_BACKEND=ct2``) stay on the device they were loaded on.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from modeling.loading import ModelError
from modeling.registry import FAMILIES, System, load_system

from .config import SpaceConfig


class Models:
    """Lazy, cached loaders; a model that fails to load is remembered with its one-line reason."""

    def __init__(self, config: SpaceConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()
        self._gpu = threading.Lock()  # one request at a time holds the shared models on the GPU
        runtime = config.runtime()
        self.device = runtime.torch_device()
        # loaded where they wait between requests: the CPU, unless CTranslate2 serves them on the GPU directly
        self._load_runtime = type(runtime)(device="cpu", dtype="float32", backend=runtime.backend) \
            if runtime.backend != "ct2" else runtime

    def load(self, family: str, name: str):
        """The inference object of ``family`` on model ``name`` (Hub id or folder), loaded on first use."""
        key = (family, name)
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = FAMILIES[family].load(name, languages=self.config.pair,
                                                             runtime=self._load_runtime)
                except ModelError as exc:
                    self._cache[key] = exc
            value = self._cache[key]
        if isinstance(value, Exception):
            raise value
        return value

    @contextmanager
    def placed(self, *runners):
        """The runners on the Space's device for one request, back on the CPU afterwards (a no-op on a CPU)."""
        if self.device == "cpu":
            yield runners
            return
        import torch

        from modeling.runtime import resolve_dtype

        dtype = resolve_dtype(self.config.dtype, self.device)
        with self._gpu:
            try:
                for r in runners:
                    r.to(self.device, dtype)
                yield runners
            finally:
                for r in runners:
                    r.to("cpu", torch.float32)
                torch.cuda.empty_cache()

    def slot(self, slot: str) -> str:
        """The model configured for a slot of the registry's systems (``VECS_<SLOT>_MODEL``)."""
        return getattr(self.config, slot)

    def system(self, system: System):
        return load_system(system, {slot: self.slot(slot) for slot, _ in system.slots}, self.load)

    def preload(self) -> list[str]:
        """Loads the models before the first visitor arrives (``VECS_PRELOAD``): importing torch and reading
        checkpoints cold takes seconds — tens on a busy machine — which the first stream would otherwise spend
        showing nothing. Returns the one-line reasons of models that cannot load; their rows say so later."""
        cfg = self.config
        if cfg.preload == "none":
            return []
        wanted = [("whisper", cfg.whisper)]
        if cfg.live_translation in ("mt", "e2e"):
            wanted.append((cfg.live_translation, self.slot(cfg.live_translation)))
        if cfg.preload == "all":
            from modeling.registry import SYSTEMS

            wanted += [(family, self.slot(slot)) for s in SYSTEMS for slot, family in s.slots]
        problems = []
        for family, name in dict.fromkeys(wanted):
            try:
                self.load(family, name)
            except ModelError as exc:
                problems.append(str(exc))
        from modeling.streaming.padding import universal_padding

        universal_padding()  # rendered once with espeak-ng, shared by every stream
        return list(dict.fromkeys(problems))
