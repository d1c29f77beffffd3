# Motion: the demo VAE (train_vae), clip latents (encode_latents), MAD pretraining / fine-tuning and decoding to
# motion frames (train_mad, finetune_mad, decode_mad), SAD's training-clip decodes for MAD's sad_decoded motion
# source (decode_sad_train) (semvideo_core.stages.mad).


rule train_vae:
    input:
        "data/{dataset}/clips/train.h5",
    output:
        directory("models/{dataset}/vae"),
    log:
        "logs/train_vae/{dataset}.log",
    benchmark:
        "logs/benchmark/train_vae/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    priority: GENERATOR_CHAIN_PRIORITY
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_vae")["threads"]
    resources:
        mem_mb=rule_resources("train_vae")["mem_mb"],
        runtime=rule_resources("train_vae")["runtime"],
        gpu=rule_resources("train_vae")["gpu"],
    params:
        vae=training_params({**config["vae"], "size": config["latents"]["size"]}),
        state=lambda wildcards: f"models/{wildcards.dataset}/state/vae",
    script:
        "../workflow_scripts/train_vae.py"


rule encode_latents:
    input:
        clips="data/{dataset}/clips/{split}.h5",
        vae=lambda wildcards: vae_inputs(wildcards.dataset),
    output:
        "data/{dataset}/latents/{split}.h5",
    log:
        "logs/encode_latents/{dataset}_{split}.log",
    benchmark:
        "logs/benchmark/encode_latents/{dataset}_{split}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    priority: GENERATOR_CHAIN_PRIORITY
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("encode_latents")["threads"]
    resources:
        mem_mb=rule_resources("encode_latents")["mem_mb"],
        runtime=rule_resources("encode_latents")["runtime"],
        gpu=rule_resources("encode_latents")["gpu"],
    params:
        vae=lambda wildcards: vae_folder(wildcards.dataset),
        latents=effective_precision(config["latents"]),
    script:
        "../workflow_scripts/encode_latents.py"


rule decode_sad_train:
    input:
        model="models/{dataset}/sad/{level}/{subject}.safetensors",
        fmri="data/{dataset}/fmri/{subject}.h5",
        embeds="data/{dataset}/embeds/{level}.safetensors",
    output:
        "predictions/{dataset}/sad_train/{subject}/{level}.safetensors",
    log:
        "logs/decode_sad_train/{dataset}_{level}_{subject}.log",
    benchmark:
        "logs/benchmark/decode_sad_train/{dataset}_{level}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        subject=r"subject\d+|\d{6}",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("decode_sad_train")["threads"]
    resources:
        mem_mb=rule_resources("decode_sad_train")["mem_mb"],
        runtime=rule_resources("decode_sad_train")["runtime"],
        gpu=rule_resources("decode_sad_train")["gpu"],
    params:
        decode=sad_decode_settings(),
        split="train",
    script:
        "../workflow_scripts/decode_sad.py"


rule train_mad:
    input:
        fmri=lambda wildcards: fmri_outputs(wildcards.dataset),
        latents="data/{dataset}/latents/train.h5",
        motion="data/{dataset}/embeds/motion.safetensors",
        decoded=lambda wildcards: mad_training_motion(wildcards.dataset, fmri_subjects(wildcards.dataset)),
    output:
        weights="models/{dataset}/mad/pretrained.safetensors",
        config="models/{dataset}/mad/pretrained.json",
    log:
        "logs/train_mad/{dataset}.log",
    benchmark:
        "logs/benchmark/train_mad/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_mad")["threads"]
    resources:
        mem_mb=rule_resources("train_mad")["mem_mb"],
        runtime=rule_resources("train_mad")["runtime"],
        gpu=rule_resources("train_mad")["gpu"],
    params:
        model=config["mad"]["model"],
        loss=config["mad"]["loss"],
        motion=mad_motion_settings(),
        pretrain=training_params(config["mad"]["pretrain"]),
        val_fraction=config["mad"]["val_fraction"],
        val_block=config["mad"]["val_block"],
        select_best=config["mad"]["select_best"],
        init=config["mad"]["init"],
        # read only by the ridge start, so that with init: random a change of ridge.alphas leaves MAD alone
        ridge_alphas=config["ridge"]["alphas"] if config["mad"]["init"] == "ridge" else None,
        state=lambda wildcards: f"models/{wildcards.dataset}/mad/state/pretrain",
    script:
        "../workflow_scripts/train_mad.py"


rule finetune_mad:
    input:
        pretrained="models/{dataset}/mad/pretrained.safetensors",
        fmri="data/{dataset}/fmri/{subject}.h5",
        latents="data/{dataset}/latents/train.h5",
        motion="data/{dataset}/embeds/motion.safetensors",
        decoded=lambda wildcards: mad_training_motion(wildcards.dataset, [wildcards.subject]),
    output:
        weights="models/{dataset}/mad/{subject}.safetensors",
        config="models/{dataset}/mad/{subject}.json",
    log:
        "logs/finetune_mad/{dataset}_{subject}.log",
    benchmark:
        "logs/benchmark/finetune_mad/{dataset}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        subject=r"subject\d+|\d{6}",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("finetune_mad")["threads"]
    resources:
        mem_mb=rule_resources("finetune_mad")["mem_mb"],
        runtime=rule_resources("finetune_mad")["runtime"],
        gpu=rule_resources("finetune_mad")["gpu"],
    params:
        loss=config["mad"]["loss"],
        motion=mad_motion_settings(),
        finetune=training_params(config["mad"]["finetune"]),
        select_best=config["mad"]["select_best"],
        calibrate=config["mad"]["calibrate"],
        state=lambda wildcards: f"models/{wildcards.dataset}/mad/state/{wildcards.subject}",
    script:
        "../workflow_scripts/finetune_mad.py"


rule decode_mad:
    input:
        unpack(mad_decode_inputs),
        vae=lambda wildcards: vae_inputs(wildcards.dataset),
    output:
        latents="predictions/{dataset}/{variant}/{subject}/motion_latents.h5",
        frames="predictions/{dataset}/{variant}/{subject}/motion_frames.h5",
    log:
        "logs/decode_mad/{dataset}_{variant}_{subject}.log",
    benchmark:
        "logs/benchmark/decode_mad/{dataset}_{variant}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        variant="full|no_motion|ridge|oracle",
        subject=r"subject\d+|\d{6}|truth",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("decode_mad")["threads"]
    resources:
        mem_mb=rule_resources("decode_mad")["mem_mb"],
        runtime=rule_resources("decode_mad")["runtime"],
        gpu=rule_resources("decode_mad")["gpu"],
    params:
        vae=lambda wildcards: vae_folder(wildcards.dataset),
        decode=lambda wildcards: mad_decode_settings(wildcards.variant),
    script:
        "../workflow_scripts/decode_mad.py"
