"""Rule preprocess_fmri: trim, detrend, z-score, select reproducible vertices, average test presentations."""

from functools import partial

from semvideo_core.data.cifti import cortex_columns
from semvideo_core.data.preprocess import PreprocessConfig, group_runs, preprocess_subject, trim_rule
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    config = PreprocessConfig(
        trim=trim_rule(snakemake.params.trim), lag_trs=snakemake.params.lag_trs, **snakemake.params.preprocess
    )
    preprocess_subject(
        group_runs(snakemake.input.cifti, snakemake.params.runs),
        partial(cortex_columns, expected=snakemake.params.cortical_vertices),
        config,
        snakemake.output[0],
        attrs={"dataset": snakemake.wildcards.dataset, "subject": snakemake.wildcards.subject},
        workers=snakemake.threads,
    )
