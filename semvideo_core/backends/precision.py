"""Where half precision runs: the one rule behind every model's `dtype` / `precision` setting. On CUDA a model runs
in the configured float16 / bfloat16; on any other device in float32, whatever the config says (the rules' params
say so too: config.effective_precision, so a change there reruns no CPU job). The tests add the CPU to the set to
run the GPU's half-precision code paths where they can."""

from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
HALF_PRECISION_DEVICES = frozenset({"cuda"})


def runs_half(device: str | torch.device) -> bool:
    """Whether models on `device` run in the configured half precision."""
    return torch.device(device).type in HALF_PRECISION_DEVICES


def runtime_dtype(device: str | torch.device, dtype: str) -> torch.dtype:
    """The torch dtype a model loaded for `device` with config `dtype` (float32 / float16 / bfloat16) runs in."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype] if runs_half(device) else torch.float32
