# The demo scene probe (train_probe): a judge of the demo world's frames, trained on its ground-truth training
# frames and scene labels (semvideo_core.stages.probe). Demo only: real datasets have no scene labels.


rule train_probe:
    input:
        train="data/demo/clips/train.h5",
        test="data/demo/clips/test.h5",
        ground_truth=str(demo_world_files().ground_truth),
    output:
        weights="models/demo/probe.safetensors",
        config="models/demo/probe.json",
    log:
        "logs/train_probe/demo.log",
    benchmark:
        "logs/benchmark/train_probe/demo.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_probe")["threads"]
    resources:
        mem_mb=rule_resources("train_probe")["mem_mb"],
        runtime=rule_resources("train_probe")["runtime"],
        gpu=rule_resources("train_probe")["gpu"],
    params:
        probe=training_params(probe_settings()),
        labelling=lambda wildcards: demo_labelling(),
        state="models/demo/state/probe",
    script:
        "../workflow_scripts/train_probe.py"
