"""Rule captions: import released caption CSVs, or mine the captions with SemMiner (starting the server if asked)."""

from semvideo_core.logs import log_to_file
from semvideo_core.semminer import with_connection
from semvideo_core.stages.semminer import captions
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params = snakemake.params
    settings = params.settings
    if params.source == "semminer":  # how to reach the server: from the config, not params (a change reruns nothing)
        settings = with_connection(settings, snakemake.config["captions"]["semminer"])
    captions(
        snakemake.input.clips,
        dict(zip(params.levels, snakemake.output)),
        params.source,
        settings,
        {level: snakemake.input[level] for level in params.levels if level in snakemake.input.keys()},
        params.cache,
        params.server_log,
    )
