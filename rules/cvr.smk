# CVR, the Conditional Video Render: the demo's own generators (train_t2i, train_motion_adapter, train_sparsectrl;
# real runs load theirs from models.*.path), the anchor frame and the video of every test clip, per variant and
# subject (render_anchor, render_video) (semvideo_core.stages.cvr).


rule train_t2i:
    input:
        latents="data/{dataset}/latents/train.h5",
        anchor="data/{dataset}/embeds/anchor.safetensors",
    output:
        directory("models/{dataset}/t2i"),
    log:
        "logs/train_t2i/{dataset}.log",
    benchmark:
        "logs/benchmark/train_t2i/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    priority: GENERATOR_CHAIN_PRIORITY
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_t2i")["threads"]
    resources:
        mem_mb=rule_resources("train_t2i")["mem_mb"],
        runtime=rule_resources("train_t2i")["runtime"],
        gpu=rule_resources("train_t2i")["gpu"],
    params:
        t2i=training_params(config["t2i"]),
        state=lambda wildcards: f"models/{wildcards.dataset}/state/t2i",
    script:
        "../workflow_scripts/train_t2i.py"


rule render_anchor:
    input:
        unpack(anchor_render_inputs),
        vae=lambda wildcards: vae_inputs(wildcards.dataset),
        t2i=lambda wildcards: generator_inputs("t2i", wildcards.dataset),
    output:
        "videos/{dataset}/{variant}/{subject}/anchor.h5",
    log:
        "logs/render_anchor/{dataset}_{variant}_{subject}.log",
    benchmark:
        "logs/benchmark/render_anchor/{dataset}_{variant}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        variant="full|no_anchor|no_motion|ridge|oracle",
        subject=r"subject\d+|\d{6}|truth",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("render_anchor")["threads"]
    resources:
        mem_mb=rule_resources("render_anchor")["mem_mb"],
        runtime=rule_resources("render_anchor")["runtime"],
        gpu=rule_resources("render_anchor")["gpu"],
    params:
        vae=lambda wildcards: vae_folder(wildcards.dataset),
        t2i=lambda wildcards: generator_folder("t2i", wildcards.dataset),
        render=lambda wildcards: anchor_render_settings(wildcards.variant),
        cache=lambda wildcards: f"videos/{wildcards.dataset}/state/anchor/{wildcards.variant}/{wildcards.subject}",
    script:
        "../workflow_scripts/render_anchor.py"


rule train_motion_adapter:
    input:
        latents="data/{dataset}/latents/train.h5",
        holistic="data/{dataset}/embeds/holistic.safetensors",
        t2i=lambda wildcards: generator_inputs("t2i", wildcards.dataset),
    output:
        directory("models/{dataset}/motion_adapter"),
    log:
        "logs/train_motion_adapter/{dataset}.log",
    benchmark:
        "logs/benchmark/train_motion_adapter/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    priority: GENERATOR_CHAIN_PRIORITY
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_motion_adapter")["threads"]
    resources:
        mem_mb=rule_resources("train_motion_adapter")["mem_mb"],
        runtime=rule_resources("train_motion_adapter")["runtime"],
        gpu=rule_resources("train_motion_adapter")["gpu"],
    params:
        t2i=lambda wildcards: generator_folder("t2i", wildcards.dataset),
        settings=training_params(config["motion_adapter"]),
        state=lambda wildcards: f"models/{wildcards.dataset}/state/motion_adapter",
    script:
        "../workflow_scripts/train_motion_adapter.py"


rule train_sparsectrl:
    input:
        latents="data/{dataset}/latents/train.h5",
        holistic="data/{dataset}/embeds/holistic.safetensors",
        t2i=lambda wildcards: generator_inputs("t2i", wildcards.dataset),
        motion_adapter=lambda wildcards: generator_inputs("motion_adapter", wildcards.dataset),
    output:
        directory("models/{dataset}/sparsectrl"),
    log:
        "logs/train_sparsectrl/{dataset}.log",
    benchmark:
        "logs/benchmark/train_sparsectrl/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    priority: GENERATOR_CHAIN_PRIORITY
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_sparsectrl")["threads"]
    resources:
        mem_mb=rule_resources("train_sparsectrl")["mem_mb"],
        runtime=rule_resources("train_sparsectrl")["runtime"],
        gpu=rule_resources("train_sparsectrl")["gpu"],
    params:
        t2i=lambda wildcards: generator_folder("t2i", wildcards.dataset),
        motion_adapter=lambda wildcards: generator_folder("motion_adapter", wildcards.dataset),
        settings=training_params(config["sparsectrl"]),
        state=lambda wildcards: f"models/{wildcards.dataset}/state/sparsectrl",
    script:
        "../workflow_scripts/train_sparsectrl.py"


rule render_video:
    input:
        unpack(video_render_inputs),
        vae=lambda wildcards: vae_inputs(wildcards.dataset),
        t2i=lambda wildcards: generator_inputs("t2i", wildcards.dataset),
        motion_adapter=lambda wildcards: generator_inputs("motion_adapter", wildcards.dataset),
        sparsectrl=lambda wildcards: generator_inputs("sparsectrl", wildcards.dataset),
    output:
        "videos/{dataset}/{variant}/{subject}/video.h5",
    log:
        "logs/render_video/{dataset}_{variant}_{subject}.log",
    benchmark:
        "logs/benchmark/render_video/{dataset}_{variant}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        variant="full|no_anchor|no_holi|no_motion|ridge|oracle",
        subject=r"subject\d+|\d{6}|truth",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("render_video")["threads"]
    resources:
        mem_mb=rule_resources("render_video")["mem_mb"],
        runtime=rule_resources("render_video")["runtime"],
        gpu=rule_resources("render_video")["gpu"],
    params:
        parts=lambda wildcards: {
            "vae": vae_folder(wildcards.dataset),
            **{part: generator_folder(part, wildcards.dataset) for part in ("t2i", "motion_adapter", "sparsectrl")},
        },
        render=lambda wildcards: video_render_settings(wildcards.variant),
        cache=lambda wildcards: f"videos/{wildcards.dataset}/state/video/{wildcards.variant}/{wildcards.subject}",
    script:
        "../workflow_scripts/render_video.py"
