# What a person watches of a render (semvideo_core.stages.preview): an mp4 per test clip and a side-by-side sheet
# (ground truth | motion frames | anchor frame | video), from render_video's evaluation frames. A rule of its own so
# that the frame rate and the sheet's size re-encode the previews without rerunning the diffusion or the evaluation.


rule preview_video:
    input:
        unpack(preview_inputs),
    output:
        mp4=directory("videos/{dataset}/{variant}/{subject}/mp4"),
        sheet=report(
            "videos/{dataset}/{variant}/{subject}/sheet.mp4",
            caption="../report/videos.rst",
            category="Videos",
            subcategory="{variant}",
        ),
    log:
        "logs/preview_video/{dataset}_{variant}_{subject}.log",
    benchmark:
        "logs/benchmark/preview_video/{dataset}_{variant}_{subject}.tsv"
    wildcard_constraints:
        dataset="demo|cc2017|hcp",
        variant="full|no_anchor|no_holi|no_motion|ridge|oracle",
        subject=r"subject\d+|\d{6}|truth",
    conda:
        "../envs/pipeline.yaml"
    threads: rule_resources("preview_video")["threads"]
    resources:
        mem_mb=rule_resources("preview_video")["mem_mb"],
        runtime=rule_resources("preview_video")["runtime"],
        gpu=rule_resources("preview_video")["gpu"],
    params:
        preview=preview_settings(),
    script:
        "../workflow_scripts/preview_video.py"
