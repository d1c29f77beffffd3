# SemVideo: reconstructing watched videos from fMRI. Includes and targets only; logic lives in rules/common.smk.
from snakemake.utils import min_version

min_version("9.17")  # 9.17 fixed threads of lone jobs escaping the --cores count (README)


configfile: workflow.source_path("config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/world.smk"
include: "rules/data.smk"
include: "rules/semminer.smk"
include: "rules/sad.smk"
include: "rules/mad.smk"
include: "rules/cvr.smk"
include: "rules/preview.smk"
include: "rules/probe.smk"
include: "rules/judge.smk"
include: "rules/evaluate.smk"
include: "rules/tables.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
