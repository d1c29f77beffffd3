"""Rule train_video_judge: the demo video judge, trained on the ground-truth training clips (resumes from its state)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.judge import train_video_judge
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    train_video_judge(
        snakemake.input.train,
        snakemake.input.test,
        snakemake.input.ground_truth,
        snakemake.params.labelling,
        with_checkpointing(snakemake.params.judge, snakemake.config["video_judge"]),
        snakemake.output[0],
        snakemake.params.state,
    )
