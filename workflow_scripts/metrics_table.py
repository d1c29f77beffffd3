"""Rule metrics_table: results/metrics.csv, results/metrics.md and results/figures/ from the per-clip CSVs."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.tables import metrics_table
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    metrics_table(
        dict(zip((tuple(key) for key in snakemake.params.rows), snakemake.input.clips)),
        snakemake.params.judges,
        snakemake.params.evaluation,
        {"csv": snakemake.output.csv, "md": snakemake.output.md, "figures": snakemake.output.figures},
        snakemake.params.samples,
    )
