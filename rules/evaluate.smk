# Evaluation (semvideo_core.stages.evaluate): the judges' outputs on the ground-truth test clips (judge_truth) and
# their Farnebäck flows (truth_flows) once per dataset, then the paper's ten metrics per test clip of every
# reconstruction (evaluate): each CVR variant's videos and MAD's motion frames, per subject.


rule judge_truth:
    input:
        clips="data/{dataset}/clips/test.h5",
        judges=lambda wildcards: judge_inputs(wildcards.dataset),
    output:
        "data/{dataset}/judged/test.h5",
    log:
        "logs/judge_truth/{dataset}.log",
    benchmark:
        "logs/benchmark/judge_truth/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("judge_truth")["threads"]
    resources:
        mem_mb=rule_resources("judge_truth")["mem_mb"],
        runtime=rule_resources("judge_truth")["runtime"],
        gpu=rule_resources("judge_truth")["gpu"],
    params:
        judges=lambda wildcards: judge_settings(wildcards.dataset),
        protocol=evaluation_protocol(),
    script:
        "../workflow_scripts/judge_truth.py"


rule truth_flows:
    input:
        clips="data/{dataset}/clips/test.h5",
    output:
        "data/{dataset}/flows/test.h5",
    log:
        "logs/truth_flows/{dataset}.log",
    benchmark:
        "logs/benchmark/truth_flows/{dataset}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("truth_flows")["threads"]
    resources:
        mem_mb=rule_resources("truth_flows")["mem_mb"],
        runtime=rule_resources("truth_flows")["runtime"],
        gpu=rule_resources("truth_flows")["gpu"],
    params:
        settings=flow_settings(),
    script:
        "../workflow_scripts/truth_flows.py"


rule evaluate:
    input:
        unpack(evaluation_inputs),
    output:
        "results/{dataset}/clips/{variant}/{subject}.csv",
    log:
        "logs/evaluate/{dataset}_{variant}_{subject}.log",
    benchmark:
        "logs/benchmark/evaluate/{dataset}_{variant}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        variant="full|no_anchor|no_holi|no_motion|ridge|oracle|motion_frames",
        subject=r"subject\d+|\d{6}|truth",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("evaluate")["threads"]
    resources:
        mem_mb=rule_resources("evaluate")["mem_mb"],
        runtime=rule_resources("evaluate")["runtime"],
        gpu=rule_resources("evaluate")["gpu"],
    params:
        judges=lambda wildcards: judge_settings(wildcards.dataset),
        evaluation=scoring_settings(),
        labelling=lambda wildcards: demo_labelling() if wildcards.dataset == "demo" else None,
    script:
        "../workflow_scripts/evaluate.py"
