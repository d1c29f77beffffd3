# The evaluation's tables, figures and report entries (semvideo_core.stages.tables): results/metrics.csv,
# results/metrics.md and results/figures/, from every per-clip CSV of rule evaluate.


rule metrics_table:
    input:
        clips=lambda wildcards: [path for path, _ in evaluated_clip_files()],
        samples=lambda wildcards: sample_inputs(),
    output:
        csv=report("results/metrics.csv", caption="../report/metrics.rst", category="Metrics"),
        md="results/metrics.md",
        figures=report(
            directory("results/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        "logs/metrics_table/all.log",
    benchmark:
        "logs/benchmark/metrics_table/all.tsv"
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("metrics_table")["threads"]
    resources:
        mem_mb=rule_resources("metrics_table")["mem_mb"],
        runtime=rule_resources("metrics_table")["runtime"],
        gpu=rule_resources("metrics_table")["gpu"],
    params:
        rows=lambda wildcards: [key for _, key in evaluated_clip_files()],
        judges={slot: config["models"][slot]["backend"] for slot in JUDGE_SLOTS},
        evaluation={k: config["evaluation"][k] for k in ("n_way", "sample_clips")},
        samples=lambda wildcards: sample_settings(),
    script:
        "../workflow_scripts/metrics_table.py"
