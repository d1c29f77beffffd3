"""Rule demo_world: generate the demo world in the raw CC2017 layout."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.world import demo_world
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    demo_world(snakemake.params.world, snakemake.params.raw_dir, list(snakemake.output), workers=snakemake.threads)
