"""Rule embed_text: one caption level -> per-token text embeddings with the configured text encoder."""

import torch

from semvideo_core.backends.text import load_text_encoder
from semvideo_core.embed import embed_captions
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.embed
    encoder = load_text_encoder(
        snakemake.params.encoder["backend"], snakemake.params.encoder["path"], settings["tokens"]
    )
    embed_captions(
        snakemake.input[0],
        encoder,
        snakemake.output[0],
        dtype=settings["dtype"],
        batch_size=settings["batch_size"],
        device=settings["device"],
    )
