"""Embedding files: caption embeddings (`data/{dataset}/embeds/{level}.safetensors`, from embed_text) and decoded
predictions (`predictions/{dataset}/{variant}/{subject}/{level}.safetensors`). One safetensors file with one or
more [N, tokens, dim] tensors and the clip id of every row (plus free-form JSON fields) in its metadata, and
optionally constants that belong to no clip (`const.{name}`: embed_text stores the empty caption's embedding,
`const.empty` [1, tokens, dim], MAD's null condition)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .atomic import atomic_output


def write_embeddings(
    path,
    tensors: dict[str, torch.Tensor],
    clip_ids: list[str],
    extra: dict | None = None,
    constants: dict[str, torch.Tensor] | None = None,
) -> None:
    """Every tensor must have one row per clip id; `extra` values are stored as JSON; `constants` as they are."""
    for key, tensor in tensors.items():
        if len(tensor) != len(clip_ids):
            raise ValueError(f"{path}: {key} has {len(tensor)} rows for {len(clip_ids)} clip ids")
    metadata = {"clip_ids": json.dumps(clip_ids), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    stored = {**tensors, **{f"const.{k}": v for k, v in (constants or {}).items()}}
    with atomic_output(path) as tmp:
        save_file({k: v.contiguous() for k, v in stored.items()}, str(tmp), metadata=metadata)


def load_embeddings(path: str | Path, key: str = "embeds") -> tuple[torch.Tensor, list[str]]:
    """([N, tokens, dim] float32, clip ids); KeyError if the file has no tensor `key`."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            clip_ids = json.loads(handle.metadata()["clip_ids"])
            if key not in handle.keys():
                raise KeyError(key)
            embeds = handle.get_tensor(key).float()
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not an embeddings file ({error})") from error
    if len(clip_ids) != len(embeds):
        raise ValueError(f"{path}: {len(embeds)} embeddings for {len(clip_ids)} clip ids")
    return embeds, clip_ids


def embedding_keys(path: str | Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def load_constant(path: str | Path, name: str) -> torch.Tensor:
    """The constant `name` (float32) of an embeddings file; an error names the file when it has none."""
    with safe_open(str(path), framework="pt") as handle:
        if f"const.{name}" not in handle.keys():
            raise ValueError(f"{path}: no constant {name!r} (an embeddings file from before it was stored?)")
        return handle.get_tensor(f"const.{name}").float()
