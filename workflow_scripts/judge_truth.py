"""Rule judge_truth: the judges' outputs on one dataset's ground-truth test clips."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.evaluate import judge_truth
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    judge_truth(snakemake.input.clips, snakemake.params.judges, snakemake.params.protocol, snakemake.output[0])
