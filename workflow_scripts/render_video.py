"""Rule render_video: one variant's videos for one subject's test clips (resumes from its per-clip cache)."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import render_video
from semvideo_core.threads import confine_threads

KEYS = ("motion_frames", "anchor", "holistic", "holistic_truth")

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    inputs = {k: snakemake.input[k] for k in KEYS if k in snakemake.input.keys()}
    render_video(inputs, snakemake.params.parts, snakemake.params.render, snakemake.output[0], snakemake.params.cache)
