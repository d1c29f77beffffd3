"""Rule train_probe: the demo scene probe, trained on the ground-truth training frames (resumes from its state)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.probe import train_probe
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    train_probe(
        snakemake.input.train,
        snakemake.input.test,
        snakemake.input.ground_truth,
        snakemake.params.labelling,
        with_checkpointing(snakemake.params.probe, snakemake.config["probe"]),
        snakemake.output.weights,
        snakemake.params.state,
    )
