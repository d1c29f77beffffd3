"""Rule preview_video: one render's mp4s and side-by-side sheet."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.preview import preview_video
from semvideo_core.threads import confine_threads

KEYS = ("video", "motion_frames", "anchor", "clips")

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    inputs = {k: snakemake.input[k] for k in KEYS}
    out = {"mp4": snakemake.output.mp4, "sheet": snakemake.output.sheet}
    preview_video(inputs, snakemake.params.preview, out)
