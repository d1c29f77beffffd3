# Semantics: caption embeddings (embed_text), SAD pretraining / fine-tuning / decoding, the ridge baseline, and
# test-set retrieval in embedding space (semvideo_core.stages.sad).


rule embed_text:
    input:
        captions="data/{dataset}/captions/{level}.csv",
        encoder=model_files("text_encoder"),
    output:
        "data/{dataset}/embeds/{level}.safetensors",
    log:
        "logs/embed_text/{dataset}_{level}.log",
    benchmark:
        "logs/benchmark/embed_text/{dataset}_{level}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        level="basic|anchor|motion|holistic",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("embed_text")["threads"]
    resources:
        mem_mb=rule_resources("embed_text")["mem_mb"],
        runtime=rule_resources("embed_text")["runtime"],
        gpu=rule_resources("embed_text")["gpu"],
    params:
        encoder=config["models"]["text_encoder"],
        embed=embed_params(config),
    script:
        "../workflow_scripts/embed_text.py"


rule train_sad:
    input:
        fmri=lambda wildcards: fmri_outputs(wildcards.dataset),
        embeds="data/{dataset}/embeds/{level}.safetensors",
    output:
        weights="models/{dataset}/sad/{level}/pretrained.safetensors",
        config="models/{dataset}/sad/{level}/pretrained.json",
    log:
        "logs/train_sad/{dataset}_{level}.log",
    benchmark:
        "logs/benchmark/train_sad/{dataset}_{level}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("train_sad")["threads"]
    resources:
        mem_mb=rule_resources("train_sad")["mem_mb"],
        runtime=rule_resources("train_sad")["runtime"],
        gpu=rule_resources("train_sad")["gpu"],
    params:
        model=config["sad"]["model"],
        loss=config["sad"]["loss"],
        pretrain=training_params(config["sad"]["pretrain"]),
        val_fraction=config["sad"]["val_fraction"],
        state=lambda wildcards: f"models/{wildcards.dataset}/sad/{wildcards.level}/state/pretrain",
    script:
        "../workflow_scripts/train_sad.py"


rule finetune_sad:
    input:
        pretrained="models/{dataset}/sad/{level}/pretrained.safetensors",
        fmri="data/{dataset}/fmri/{subject}.h5",
        embeds="data/{dataset}/embeds/{level}.safetensors",
    output:
        weights="models/{dataset}/sad/{level}/{subject}.safetensors",
        config="models/{dataset}/sad/{level}/{subject}.json",
    log:
        "logs/finetune_sad/{dataset}_{level}_{subject}.log",
    benchmark:
        "logs/benchmark/finetune_sad/{dataset}_{level}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        subject=r"subject\d+|\d{6}",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("finetune_sad")["threads"]
    resources:
        mem_mb=rule_resources("finetune_sad")["mem_mb"],
        runtime=rule_resources("finetune_sad")["runtime"],
        gpu=rule_resources("finetune_sad")["gpu"],
    params:
        loss=config["sad"]["loss"],
        finetune=training_params(config["sad"]["finetune"]),
        state=lambda wildcards: f"models/{wildcards.dataset}/sad/{wildcards.level}/state/{wildcards.subject}",
    script:
        "../workflow_scripts/finetune_sad.py"


rule decode_sad:
    input:
        model="models/{dataset}/sad/{level}/{subject}.safetensors",
        fmri="data/{dataset}/fmri/{subject}.h5",
        embeds="data/{dataset}/embeds/{level}.safetensors",
    output:
        "predictions/{dataset}/sad/{subject}/{level}.safetensors",
    log:
        "logs/decode_sad/{dataset}_{level}_{subject}.log",
    benchmark:
        "logs/benchmark/decode_sad/{dataset}_{level}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        subject=r"subject\d+|\d{6}",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("decode_sad")["threads"]
    resources:
        mem_mb=rule_resources("decode_sad")["mem_mb"],
        runtime=rule_resources("decode_sad")["runtime"],
        gpu=rule_resources("decode_sad")["gpu"],
    params:
        decode=sad_decode_settings(),
        split="test",
    script:
        "../workflow_scripts/decode_sad.py"


rule ridge:
    input:
        fmri="data/{dataset}/fmri/{subject}.h5",
        embeds="data/{dataset}/embeds/{level}.safetensors",
    output:
        "predictions/{dataset}/ridge/{subject}/{level}.safetensors",
    log:
        "logs/ridge/{dataset}_{level}_{subject}.log",
    benchmark:
        "logs/benchmark/ridge/{dataset}_{level}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        subject=r"subject\d+|\d{6}",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("ridge")["threads"]
    resources:
        mem_mb=rule_resources("ridge")["mem_mb"],
        runtime=rule_resources("ridge")["runtime"],
        gpu=rule_resources("ridge")["gpu"],
    params:
        ridge=config["ridge"],
    script:
        "../workflow_scripts/ridge.py"


rule semantic_retrieval:
    input:
        predictions=lambda wildcards: semantic_predictions(wildcards.dataset),
        embeds=lambda wildcards: [
            f"data/{wildcards.dataset}/embeds/{level}.safetensors" for level in config["sad"]["levels"]
        ],
    output:
        "results/{dataset}/semantic_retrieval.csv",
    log:
        "logs/semantic_retrieval/{dataset}.log",
    benchmark:
        "logs/benchmark/semantic_retrieval/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("semantic_retrieval")["threads"]
    resources:
        mem_mb=rule_resources("semantic_retrieval")["mem_mb"],
        runtime=rule_resources("semantic_retrieval")["runtime"],
        gpu=rule_resources("semantic_retrieval")["gpu"],
    script:
        "../workflow_scripts/semantic_retrieval.py"
