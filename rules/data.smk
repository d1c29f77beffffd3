# Preprocessing: fMRI per subject and video clips per split (semvideo_core.data).


rule preprocess_fmri:
    input:
        cifti=fmri_inputs,
    output:
        "data/{dataset}/fmri/{subject}.h5",
    log:
        "logs/preprocess_fmri/{dataset}_{subject}.log",
    benchmark:
        "logs/benchmark/preprocess_fmri/{dataset}_{subject}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("preprocess_fmri")["threads"]
    resources:
        mem_mb=rule_resources("preprocess_fmri")["mem_mb"],
        runtime=rule_resources("preprocess_fmri")["runtime"],
        gpu=rule_resources("preprocess_fmri")["gpu"],
    params:
        runs=fmri_run_labels,
        preprocess=preprocess_settings(),
        trim=lambda wildcards: cc2017_like_layout(wildcards.dataset)["trim"],
        lag_trs=lambda wildcards: cc2017_like_layout(wildcards.dataset)["lag_trs"],
        cortical_vertices=lambda wildcards: cc2017_like_layout(wildcards.dataset)["cortical_vertices"],
    script:
        "../workflow_scripts/preprocess_fmri.py"


rule extract_clips:
    input:
        movies=movie_inputs,
    output:
        "data/{dataset}/clips/{split}.h5",
    log:
        "logs/extract_clips/{dataset}_{split}.log",
    benchmark:
        "logs/benchmark/extract_clips/{dataset}_{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("extract_clips")["threads"]
    resources:
        mem_mb=rule_resources("extract_clips")["mem_mb"],
        runtime=rule_resources("extract_clips")["runtime"],
        gpu=rule_resources("extract_clips")["gpu"],
    params:
        clips=config["clips"],
        clips_per_run=lambda wildcards: clips_per_run(wildcards.dataset),
        clip_seconds=lambda wildcards: clip_seconds(wildcards.dataset),
    script:
        "../workflow_scripts/extract_clips.py"


checkpoint cc2017_raw:
    output:
        "data/cc2017/raw_manifest.sha256",
    log:
        "logs/cc2017_raw.log",
    benchmark:
        "logs/benchmark/cc2017_raw.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("cc2017_raw")["threads"]
    resources:
        mem_mb=rule_resources("cc2017_raw")["mem_mb"],
        runtime=rule_resources("cc2017_raw")["runtime"],
        gpu=rule_resources("cc2017_raw")["gpu"],
    params:
        raw_dir=config["cc2017"]["raw_dir"],
        files=lambda wildcards: cc2017_raw_files(),
    script:
        "../workflow_scripts/cc2017_raw.py"


checkpoint hcp_raw:
    output:
        "data/hcp/raw_manifest.sha256",
    log:
        "logs/hcp_raw.log",
    benchmark:
        "logs/benchmark/hcp_raw.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("hcp_raw")["threads"]
    resources:
        mem_mb=rule_resources("hcp_raw")["mem_mb"],
        runtime=rule_resources("hcp_raw")["runtime"],
        gpu=rule_resources("hcp_raw")["gpu"],
    params:
        raw_dir=config["hcp"]["raw_dir"],
        subjects=config["hcp"]["subjects"],
        runs=hcp_runs(),
        support_files=hcp_support_files(),
    script:
        "../workflow_scripts/hcp_raw.py"


rule preprocess_fmri_hcp:
    input:
        runs=hcp_run_inputs,
        clip_times=hcp_clip_times,
        dlabel=hcp_parcellation_input,
    output:
        "data/hcp/fmri/{hcp_subject}.h5",
    log:
        "logs/preprocess_fmri/hcp_{hcp_subject}.log",
    benchmark:
        "logs/benchmark/preprocess_fmri/hcp_{hcp_subject}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("preprocess_fmri_hcp")["threads"]
    resources:
        mem_mb=rule_resources("preprocess_fmri_hcp")["mem_mb"],
        runtime=rule_resources("preprocess_fmri_hcp")["runtime"],
        gpu=rule_resources("preprocess_fmri_hcp")["gpu"],
    params:
        run_names=[r["run"] for r in config["hcp"]["runs"]],
        parcels=config["hcp"]["parcels"],
        dlabel=config["hcp"]["dlabel"],
        tr=config["hcp"]["tr"],
        clip_seconds=config["hcp"]["clip_seconds"],
        lag_trs=config["hcp"]["lag_trs"],
        test_segment=config["hcp"]["test_segment"],
        detrend_order=config["preprocess"]["detrend_order"],
    script:
        "../workflow_scripts/preprocess_fmri_hcp.py"


rule extract_clips_hcp:
    input:
        movies=hcp_movie_inputs,
        clip_times=hcp_clip_times,
    output:
        "data/hcp/clips/{split}.h5",
    log:
        "logs/extract_clips/hcp_{split}.log",
    benchmark:
        "logs/benchmark/extract_clips/hcp_{split}.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("extract_clips_hcp")["threads"]
    resources:
        mem_mb=rule_resources("extract_clips_hcp")["mem_mb"],
        runtime=rule_resources("extract_clips_hcp")["runtime"],
        gpu=rule_resources("extract_clips_hcp")["gpu"],
    params:
        run_names=[r["run"] for r in config["hcp"]["runs"]],
        clips={k: config["clips"][k] for k in ("size", "backend", "compression")},  # HCP has its own protocol
        protocol=config["hcp"]["clip_protocol"],
        clip_seconds=config["hcp"]["clip_seconds"],
        test_segment=config["hcp"]["test_segment"],
    script:
        "../workflow_scripts/extract_clips_hcp.py"
