"""Rule evaluate: the ten metrics (and on the demo the scene probe) per test clip of one reconstruction."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.evaluate import evaluate
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    names = ("reconstruction", "truth", "judged", "flows", "probe", "ground_truth")
    inputs = {k: snakemake.input[k] for k in names if k in snakemake.input.keys()}
    evaluate(
        inputs,
        snakemake.params.judges,
        snakemake.params.evaluation,
        snakemake.output[0],
        labelling=snakemake.params.labelling,
        workers=snakemake.threads,
    )
