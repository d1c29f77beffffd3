# The demo world: stimuli, fMRI, captions and ground truth in the raw CC2017 layout (semvideo_core.world).


rule demo_world:
    output:
        stimuli=[str(p) for p in demo_world_files().stimuli],
        cifti=[str(p) for p in demo_world_files().cifti],
        captions=[str(p) for p in demo_world_files().captions.values()],
        ground_truth=str(demo_world_files().ground_truth),
    log:
        "logs/demo_world.log",
    benchmark:
        "logs/benchmark/demo_world.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("demo_world")["threads"]
    resources:
        mem_mb=rule_resources("demo_world")["mem_mb"],
        runtime=rule_resources("demo_world")["runtime"],
        gpu=rule_resources("demo_world")["gpu"],
    params:
        raw_dir=lambda wildcards, output: str(Path(output.ground_truth).parent),
        world=config["demo"]["world"],
    script:
        "../workflow_scripts/demo_world.py"
