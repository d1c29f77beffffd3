"""Our trained models on disk: weights in safetensors, and beside them a JSON file with the model's config under
one key (`sad`, `mad`) plus free-form fields (phase, held-out clips, settings, log). Both written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_output


def save_model(model: nn.Module, path, key: str, extra: dict) -> None:
    """`model.config.to_dict()` goes under `key` in `{path stem}.json`, with `extra`."""
    path = Path(path)
    with atomic_output(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({key: model.config.to_dict(), **extra}, indent=2))
    with atomic_output(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def load_model(path, key: str, build: Callable[[dict], nn.Module]) -> tuple[nn.Module, dict]:
    """(the model `build(config)` with the saved weights, in eval mode; the JSON's other fields). Any problem
    names the file."""
    path = Path(path)
    try:
        saved = json.loads(path.with_suffix(".json").read_text())
        model = build(saved.pop(key))
        model.load_state_dict(load_file(str(path)))
    except (OSError, KeyError, TypeError, RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a {key.upper()} model with its .json config ({error})") from error
    return model.eval(), saved
