"""Rule judge_truth: the judges' outputs on one dataset's ground-truth test clips."""

import torch

from semvideo_core.logs import log_to_file
from semvideo_core.stages.evaluate import judge_truth

with log_to_file(snakemake.log[0], threads=snakemake.threads):
    torch.set_num_threads(snakemake.threads)
    judge_truth(snakemake.input.clips, snakemake.params.judges, snakemake.params.protocol, snakemake.output[0])
