# The demo video judge (train_video_judge): a small VideoMAE trained on the demo world's ground-truth training clips
# to name their scene class (semvideo_core.stages.judge). It stands in for Kinetics VideoMAE (N-way-V) and ViFi-CLIP
# (VIFI) on the demo; real runs read those from models.video_classifier / models.vifi_clip.


rule train_video_judge:
    input:
        train="data/demo/clips/train.h5",
        test="data/demo/clips/test.h5",
        ground_truth=str(demo_world_files().ground_truth),
    output:
        directory("models/demo/video_judge"),
    log:
        "logs/train_video_judge/demo.log",
    benchmark:
        "logs/benchmark/train_video_judge/demo.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_video_judge")["threads"]
    resources:
        mem_mb=rule_resources("train_video_judge")["mem_mb"],
        runtime=rule_resources("train_video_judge")["runtime"],
        gpu=rule_resources("train_video_judge")["gpu"],
    params:
        judge=training_params(config["video_judge"]),
        labelling=lambda wildcards: demo_labelling(),
        state="models/demo/state/video_judge",
    script:
        "../workflow_scripts/train_video_judge.py"
