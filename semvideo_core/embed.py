"""Stage embed_text: caption CSVs -> per-token text embeddings, the targets of SAD.

Output per level: a safetensors file with `embeds` [N, tokens, dim] (float16 or float32) in the CSV's clip order,
and the clip ids, encoder and caption file in its metadata.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from .atomic import atomic_output
from .backends.text import TextEncoder
from .semminer.captions import read_captions

log = logging.getLogger(__name__)
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def embed_captions(
    captions_csv: str | Path,
    encoder: TextEncoder,
    out_path: str | Path,
    dtype: str = "float16",
    batch_size: int = 64,
    device: str = "cpu",
) -> None:
    texts = read_captions(captions_csv)
    clip_ids = list(texts)
    chunks = []
    with tqdm(total=len(clip_ids), desc=f"embed {Path(captions_csv).stem}", unit="caption", file=sys.stderr) as bar:
        for start in range(0, len(clip_ids), batch_size):
            batch = [texts[c] for c in clip_ids[start : start + batch_size]]
            chunks.append(encoder.encode(batch, batch_size, device).to(DTYPES[dtype]))
            bar.update(len(batch))
    embeds = torch.cat(chunks) if chunks else torch.empty(0, encoder.tokens, encoder.dim, dtype=DTYPES[dtype])
    metadata = {
        "clip_ids": json.dumps(clip_ids),
        "encoder": json.dumps({"backend": encoder.name, "tokens": encoder.tokens, "dim": encoder.dim}),
        "captions": str(captions_csv),
    }
    with atomic_output(out_path) as tmp:
        save_file({"embeds": embeds.contiguous()}, str(tmp), metadata=metadata)
    log.info("%s: %d captions -> %s %s", out_path, len(clip_ids), tuple(embeds.shape), dtype)


def load_embeddings(path: str | Path, key: str = "embeds") -> tuple[torch.Tensor, list[str]]:
    """([N, tokens, dim] float32, clip ids) of an embed_text (or decode) output; KeyError if `key` is absent."""
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
