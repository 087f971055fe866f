"""Where and in what precision a model runs: ``--device auto|cpu|cuda[:N]``, ``--dtype auto|float32|bfloat16|
float16`` for transformers, and ``--backend transformers|ct2`` with CTranslate2's compute types.

``auto`` means the GPU when there is one (bf16 where it supports it, else fp16) and the CPU in float32 otherwise;
CTranslate2 runs int8 on a CPU and float16 on a GPU. A request the machine cannot honour is one line naming the
option and what is available, before any weights are read.
"""
from __future__ import annotations

from dataclasses import dataclass

from .loading import ModelError

DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "transformers", "ct2")


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda:N`` is checked against the GPUs present."""
    device = (device or "auto").strip().lower()
    gpus = _cuda_count()
    available = "cpu" + (f", cuda (cuda:0–cuda:{gpus - 1})" if gpus else "")
    if device == "auto":
        return "cuda" if gpus else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        index = device.partition(":")[2]
        if not gpus:
            raise ModelError(f"--device {device}: no CUDA GPU on this machine (available: {available})")
        if index and (not index.isdigit() or int(index) >= gpus):
            raise ModelError(f"--device {device}: no such GPU (available: {available})")
        return device
    raise ModelError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N (available: {available})")


def resolve_dtype(dtype: str, device: str):
    """The torch dtype for ``device``: ``auto`` is bf16 on a GPU that supports it, fp16 on another GPU, fp32 on
    a CPU (half precision on a CPU is slower, not faster)."""
    import torch

    dtype = (dtype or "auto").strip().lower()
    if dtype not in DTYPES:
        raise ModelError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    on_gpu = device.startswith("cuda")
    if dtype == "auto":
        if not on_gpu:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dtype == "float16" and not on_gpu:
        raise ModelError(f"--dtype float16 on {device}: half precision needs a GPU here (use float32 or bfloat16)")
    return getattr(torch, dtype)


def ct2_compute_type(quantization: str, device: str) -> str:
    """CTranslate2's compute type for ``device``: ``auto`` is int8 on a CPU and float16 on a GPU; anything else
    must be one the device supports."""
    import ctranslate2

    kind = "cuda" if device.startswith("cuda") else "cpu"
    supported = sorted(ctranslate2.get_supported_compute_types(kind))
    quantization = (quantization or "auto").strip().lower()
    if quantization in ("auto", "default"):
        return "float16" if kind == "cuda" and "float16" in supported else ("int8" if "int8" in supported else "float32")
    if quantization not in supported:
        raise ModelError(f"--quantization {quantization}: not supported on {kind} (available: {', '.join(supported)})")
    return quantization


@dataclass(frozen=True)
class Runtime:
    """How every model of one command or Space runs."""

    device: str = "auto"
    dtype: str = "auto"
    backend: str = "auto"
    quantization: str = "auto"  # CTranslate2 only

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ModelError(f"--backend {self.backend!r}: expected one of {', '.join(BACKENDS)}")

    def torch_device(self) -> str:
        return resolve_device(self.device)

    def check(self) -> "Runtime":
        """Every option checked against this machine at once, before a model or any audio is read."""
        device = self.torch_device()
        resolve_dtype(self.dtype, device)
        if self.backend == "ct2" or self.quantization != "auto":
            ct2_compute_type(self.quantization, device)
        return self

    def place(self, model):
        """``model`` on this runtime's device and dtype, in inference mode."""
        device = self.torch_device()
        return model.to(device=device, dtype=resolve_dtype(self.dtype, device)).eval()


CPU = Runtime(device="cpu", dtype="float32", backend="transformers")
