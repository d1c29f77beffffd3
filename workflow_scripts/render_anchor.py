"""Rule render_anchor: one variant's anchor frames for one subject's test clips (resumes from its per-clip cache)."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import render_anchor
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    inputs = {k: snakemake.input[k] for k in ("motion_frames", "anchor_truth", "anchor") if k in snakemake.input.keys()}
    render_anchor(
        inputs,
        snakemake.params.t2i,
        snakemake.params.vae,
        snakemake.params.render,
        snakemake.output[0],
        snakemake.params.cache,
    )
