"""Rule truth_flows: the Farnebäck flows of one dataset's ground-truth test clips, which every evaluation shares."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.evaluate import truth_flows
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    truth_flows(snakemake.input.clips, snakemake.params.settings, snakemake.output[0], workers=snakemake.threads)
