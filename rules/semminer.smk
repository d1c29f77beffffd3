# Captions per clip at four levels: imported from released CSVs, or mined by SemMiner (semvideo_core.semminer).


rule captions:
    input:
        unpack(precomputed_caption_inputs),
        clips=expand("data/{{dataset}}/clips/{split}.h5", split=("train", "test")),
        captioner=captioner_files(),
    output:
        [f"data/{{dataset}}/captions/{level}.csv" for level in caption_levels()],
    log:
        "logs/captions/{dataset}.log",
    benchmark:
        "logs/benchmark/captions/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        semminer_env()
    threads: rule_resources("captions")["threads"]
    resources:
        mem_mb=rule_resources("captions")["mem_mb"],
        runtime=rule_resources("captions")["runtime"],
        gpu=rule_resources("captions")["gpu"],
    params:
        source=config["captions"]["source"],
        settings=caption_settings(),
        levels=caption_levels(),
        cache=lambda wildcards: f"data/{wildcards.dataset}/captions/cache",
        server_log=lambda wildcards: f"logs/captions/{wildcards.dataset}_server.log",
    script:
        "../workflow_scripts/captions.py"
