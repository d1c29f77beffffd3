# Config validation and every input/target helper of the workflow. Only light modules are imported here (no
# numba, h5py, PyAV, nibabel or torch): the DAG is built on login nodes too, by every `snakemake -n`.
from pathlib import Path

import yaml
from snakemake.utils import validate

from semvideo_core.config import embed_params, effective_precision, judge_runtime, training_params, with_defaults
from semvideo_core.data import cc2017_layout, hcp_layout
from semvideo_core.semminer import without_connection, without_unused
from semvideo_core.world.config import WorldConfig
from semvideo_core.world.layout import world_files

# A rule's params hold exactly what decides its outputs, since any change to them reruns it: not how a job reaches a
# server (without_connection) or where missing raw files are fetched from (cc2017.download_url, hcp.support_s3_prefix:
# the scripts read them from the config), how often it saves its training state (training_params; the scripts
# restore it from the config) or half precision that a CPU job does not apply (effective_precision), nor keys its
# settings leave unread (preprocess_settings, embed_params, caption_settings, judge_runtime, sad_decode_settings,
# mad_motion_settings, scoring_settings).

# Defaults come from the schema alone, merged deeply: a partial override keeps the rest of its section.
_schema = yaml.safe_load(Path(workflow.basedir, "schemas", "config.schema.yaml").read_text())
config.update(with_defaults(config, _schema))
validate(config, "../schemas/config.schema.yaml")

if "motion" not in config["sad"]["levels"] and {"full"} & set(config["mad"]["variants"]):
    raise ValueError(
        "config: mad.variants includes full, whose motion tokens are SAD's motion decodes; " "add motion to sad.levels"
    )

for _dataset in config["datasets"]:
    if _dataset != "demo" and not config[_dataset]["raw_dir"]:
        raise ValueError(
            f"config: datasets includes {_dataset!r} but {_dataset}.raw_dir is not set; "
            f"point it at the downloaded {_dataset} data"
        )


wildcard_constraints:
    dataset="demo|cc2017",
    subject=r"subject\d+",
    hcp_subject=r"\d{6}",
    split="train|test",


def demo_world_config():
    """The validated demo-world settings; cross-field errors name the key."""
    try:
        return WorldConfig.from_dict(config["demo"]["world"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"config: demo.world: {error}") from error


def demo_world_files():
    return world_files(demo_world_config(), config["demo"]["raw_dir"])


def rule_resources(rule_name):
    return config["resources"][rule_name]


# The demo generators' chain (VAE -> latents -> t2i -> MotionAdapter -> SparseCtrl -> renders) is the DAG's longest
# path: its rules go first among the ready jobs that fit the free cores, so that the rest fills the cores around it
# (a two-thread job still waits while one-thread jobs keep one of two cores busy: README, "How long the main job
# takes").
GENERATOR_CHAIN_PRIORITY = 10


BUILT_BACKENDS = {"tiny_clip"}  # stand-ins built at `path` by the job that loads them (nothing to read before)


def model_files(part):
    """Every file of models.{part}.path (a folder or one file): inputs of the rules that load it, so that new
    weights rerun them. The path itself is also in those rules' params."""
    entry = config["models"][part]
    if not entry["path"] or entry["backend"] in BUILT_BACKENDS:
        return []
    path = Path(entry["path"])
    if not path.is_dir():
        return [str(path)]  # a missing path stops the run as a missing input, naming it
    return sorted(str(f) for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))


def cc2017_like_layout(dataset):
    """Sizes, trimming and exclusions of a dataset in the CC2017 layout (the demo world or CC2017 itself)."""
    if dataset == "demo":
        world = demo_world_config()
        kept = world.clips_per_segment
        trailing = cc2017_layout.TRAILING_VOLUMES
        return {
            "raw_dir": config["demo"]["raw_dir"],
            "subjects": list(range(1, world.n_subjects + 1)),
            "sizes": (world.train_segments, world.test_segments, world.train_repeats, world.test_repeats),
            "cortical_vertices": None,  # each demo subject has its own count; the structure names still select
            "trim": [{"volumes": lead + kept + trailing, "drop_first": lead, "drop_last": trailing} for lead in (1, 2)],
            "lag_trs": config["demo"]["lag_trs"],
            "exclude": config["demo"]["exclude"],
        }
    section = config["cc2017"]
    return {
        "raw_dir": section["raw_dir"],
        "subjects": section["subjects"],
        "sizes": (
            section["train_segments"],
            section["test_segments"],
            section["train_repeats"],
            section["test_repeats"],
        ),
        "cortical_vertices": section["cortical_vertices"],
        "trim": section["trim"],
        "lag_trs": section["lag_trs"],
        "exclude": section["exclude"],
    }


def cc2017_raw_files():
    layout = cc2017_like_layout("cc2017")
    return cc2017_layout.raw_files(layout["subjects"], *layout["sizes"])


def raw_data_ready(dataset):
    """Raw files of a downloaded dataset exist only once its checkpoint ran; the demo world's are rule outputs."""
    if dataset == "cc2017":
        checkpoints.cc2017_raw.get()
    elif dataset == "hcp":
        checkpoints.hcp_raw.get()


def hcp_runs():
    return [(r["run"], r["direction"]) for r in config["hcp"]["runs"]]


def hcp_support_files():
    """Files under hcp.raw_dir that are not on S3: the stimulus movies and the clip timing."""
    section = config["hcp"]
    return [f"stimuli/{r['movie']}" for r in section["runs"]] + [section["clip_times"]]


def hcp_run_inputs(wildcards):
    raw_data_ready("hcp")
    keys = hcp_layout.hcp_movie_keys(wildcards.hcp_subject, hcp_runs())
    return [str(Path(config["hcp"]["raw_dir"]) / key) for key in keys]


def hcp_parcellation_input(wildcards):
    """The parcellation file when one is configured: an input, so that a file replaced in place reruns the job."""
    return [config["hcp"]["dlabel"]] if config["hcp"]["dlabel"] else []


def hcp_movie_inputs(wildcards):
    raw_data_ready("hcp")
    return [str(Path(config["hcp"]["raw_dir"]) / "stimuli" / r["movie"]) for r in config["hcp"]["runs"]]


def hcp_clip_times(wildcards):
    raw_data_ready("hcp")
    return str(Path(config["hcp"]["raw_dir"]) / config["hcp"]["clip_times"])


def subject_runs(dataset, subject):
    layout = cc2017_like_layout(dataset)
    number = int(subject.removeprefix("subject"))
    excluded = [(e["run"], e["rep"]) for e in layout["exclude"] if e["subject"] == number]
    return cc2017_layout.subject_runs(layout["raw_dir"], number, *layout["sizes"], exclude=excluded)


def fmri_inputs(wildcards):
    """Every CIFTI run of one subject, in run order (aligned with fmri_run_labels)."""
    raw_data_ready(wildcards.dataset)
    return [str(path) for run in subject_runs(wildcards.dataset, wildcards.subject) for path in run.paths]


def fmri_run_labels(wildcards):
    return [
        [run.name, run.split, rep] for run in subject_runs(wildcards.dataset, wildcards.subject) for rep in run.reps
    ]


def movie_inputs(wildcards):
    raw_data_ready(wildcards.dataset)
    layout = cc2017_like_layout(wildcards.dataset)
    n_train, n_test = layout["sizes"][:2]
    return [
        str(cc2017_layout.stimulus_path(layout["raw_dir"], run))
        for run in cc2017_layout.runs(n_train, n_test)
        if run.split == wildcards.split
    ]


def clips_per_run(dataset):
    """Clips per movie: the volumes the trimming rule keeps (the rule itself is checked here)."""
    return cc2017_layout.kept_volumes(cc2017_layout.trim_rule(cc2017_like_layout(dataset)["trim"]))


def clip_seconds(dataset):
    """Seconds per clip (one clip per volume): the world's TR, or the dataset's."""
    return demo_world_config().tr if dataset == "demo" else config[dataset]["tr"]


def caption_levels():
    """Caption levels written: all four when mined; those with a file when imported (CC2017-SE has no
    basic summaries)."""
    section = config["captions"]
    if section["source"] == "semminer":
        return ["basic", "anchor", "motion", "holistic"]
    return [level for level, name in section["precomputed"]["files"].items() if name]


def precomputed_caption_inputs(wildcards):
    """The released caption CSVs of a dataset, named by level (none when captions are mined)."""
    section = config["captions"]
    if section["source"] != "precomputed":
        return {}
    folder = section["precomputed"]["dir"]
    if not folder:  # CC2017-SE/ under the dataset's raw_dir, whose files exist once the raw data is in place
        raw_data_ready(wildcards.dataset)
        folder = Path(config[wildcards.dataset]["raw_dir"]) / "CC2017-SE"
    return {level: str(Path(folder) / section["precomputed"]["files"][level]) for level in caption_levels()}


def launches_captioner():
    section = config["captions"]
    return section["source"] == "semminer" and section["semminer"]["server"]["mode"] == "launch"


def caption_settings():
    """Exactly the settings that decide the captions - the import settings, or SemMiner's (with the weights' path
    when it launches its own server) less how it connects, which the script reads from the config."""
    section = config["captions"]
    if section["source"] == "precomputed":
        return section["precomputed"]
    model_path = config["models"]["captioner"]["path"] if launches_captioner() else None
    return {**without_unused(without_connection(section["semminer"])), "model_path": model_path}


def captioner_files():
    return model_files("captioner") if launches_captioner() else []


def semminer_env():
    """A launched vLLM server needs its own environment (vLLM pins its own torch); everything else the pipeline's."""
    return "../envs/vllm.yaml" if launches_captioner() else "../envs/pipeline.yaml"


def fmri_subjects(dataset):
    """Names of a dataset's preprocessed subjects (the stems of data/{dataset}/fmri/*.h5)."""
    if dataset == "hcp":
        return [str(s) for s in config["hcp"]["subjects"]]
    return [f"subject{k}" for k in cc2017_like_layout(dataset)["subjects"]]


# The oracle is built from the ground truth alone (true latents and caption embeddings, no fMRI), the same for
# every subject: it is decoded, rendered and scored once per dataset, under this name in the subject's place.
TRUTH_SUBJECT = "truth"
SUBJECT_FREE_VARIANTS = ("oracle",)


def variant_subjects(dataset, variant):
    """The subjects a MAD, render or evaluation variant is built for."""
    return [TRUTH_SUBJECT] if variant in SUBJECT_FREE_VARIANTS else fmri_subjects(dataset)


def check_variant_subject(wildcards):
    """A file of the oracle under a real subject, or of a decoder under the truth, names no job: say so."""
    subject_free = wildcards.variant in SUBJECT_FREE_VARIANTS
    if subject_free != (wildcards.subject == TRUTH_SUBJECT):
        where = f"{wildcards.variant}/{wildcards.subject}"
        if subject_free:
            raise ValueError(f"{where}: {wildcards.variant} needs no fMRI; it is built once, as {TRUTH_SUBJECT}")
        raise ValueError(f"{where}: {TRUTH_SUBJECT} stands for no subject, only in {', '.join(SUBJECT_FREE_VARIANTS)}")


def fmri_outputs(dataset):
    return [f"data/{dataset}/fmri/{subject}.h5" for subject in fmri_subjects(dataset)]


def semantic_predictions(dataset):
    """Every decoded test-set embedding: variant x subject x level."""
    return [
        f"predictions/{dataset}/{variant}/{subject}/{level}.safetensors"
        for variant in config["sad"]["variants"]
        for subject in fmri_subjects(dataset)
        for level in config["sad"]["levels"]
    ]


def vae_folder(dataset):
    """The VAE's folder: the demo VAE that train_vae writes, or models.vae.path."""
    entry = config["models"]["vae"]
    if entry["backend"] == "demo":
        return f"models/{dataset}/vae"
    if not entry["path"]:
        raise ValueError("config: models.vae.backend diffusers needs models.vae.path (an AutoencoderKL folder)")
    return entry["path"]


def vae_inputs(dataset):
    return [vae_folder(dataset)] if config["models"]["vae"]["backend"] == "demo" else model_files("vae")


def mad_training_motion(dataset, subjects):
    """SAD's decodes of the training clips, when MAD trains on them (mad.motion.source sad_decoded)."""
    if config["mad"]["motion"]["source"] != "sad_decoded":
        return []
    return [f"predictions/{dataset}/sad_train/{subject}/motion.safetensors" for subject in subjects]


def mad_decode_inputs(wildcards):
    """What each MAD variant decodes from (besides the subject's fMRI and the VAE)."""
    check_variant_subject(wildcards)
    dataset, subject = wildcards.dataset, wildcards.subject
    if wildcards.variant == "oracle":
        return {"test_latents": f"data/{dataset}/latents/test.h5"}
    fmri = {"fmri": f"data/{dataset}/fmri/{subject}.h5"}
    if wildcards.variant == "ridge":
        return {**fmri, "train_latents": f"data/{dataset}/latents/train.h5"}
    inputs = {**fmri, "model": f"models/{dataset}/mad/{subject}.safetensors"}
    if wildcards.variant == "full":
        inputs["sad_motion"] = f"predictions/{dataset}/sad/{subject}/motion.safetensors"
    else:
        inputs["motion"] = f"data/{dataset}/embeds/motion.safetensors"  # its empty caption
    return inputs


def preprocess_settings():
    """The preprocess section less the threshold its voxel selection does not use (alpha for top_k, top_k for
    bonferroni)."""
    section = config["preprocess"]
    unused = "alpha" if section["selection"] == "top_k" else "top_k"
    return {k: v for k, v in section.items() if k != unused}


def sad_decode_settings():
    """sad.decode; without the Refineformer (refine: false) its steps, strength and seed are unused."""
    section = config["sad"]["decode"]
    return section if section["refine"] else {"refine": False}


def mad_motion_settings():
    """mad.motion; the noise level only for the noisy_truth source, the one that draws noise."""
    section = config["mad"]["motion"]
    return {k: v for k, v in section.items() if k != "noise" or section["source"] == "noisy_truth"}


def mad_decode_settings(variant):
    """decode_mad's knobs: the ridge alphas only for the ridge variant, so changing them reruns nothing else."""
    settings = effective_precision(config["mad"]["decode"])
    if variant == "ridge":
        settings["ridge_alphas"] = config["ridge"]["alphas"]
    return settings


def probe_settings():
    section = dict(config["probe"])
    section["degrade_size"] = section["degrade_size"] or config["latents"]["size"]
    if section["dense_stage"] >= len(section["channels"]):
        raise ValueError(
            f"config: probe.dense_stage {section['dense_stage']} is not one of the {len(section['channels'])} stages"
        )
    if section["colour_readout"] == "dense" and not section["dense_weight"]:
        raise ValueError("config: probe.colour_readout dense reads the dense maps; it needs probe.dense_weight > 0")
    return section


def generator_folder(part, dataset):
    """A CVR model's folder (part: t2i, motion_adapter, sparsectrl): the demo's own, that a train_ rule writes in
    models/{dataset}/{part}, or models.{part}.path."""
    entry = config["models"][part]
    if entry["backend"] == "tiny":
        return f"models/{dataset}/{part}"
    if not entry["path"]:
        raise ValueError(f"config: models.{part}.backend diffusers needs models.{part}.path (a diffusers folder)")
    return entry["path"]


def generator_inputs(part, dataset):
    return [generator_folder(part, dataset)] if config["models"][part]["backend"] == "tiny" else model_files(part)


# Each render variant: the MAD variant whose motion frames it starts from, and where its anchor and holistic tokens
# come from (sad / ridge: decoded; truth: the test captions' embeddings; empty: the empty caption).
RENDER_SOURCES = {
    "full": {"motion": "full", "anchor": "sad", "holistic": "sad"},
    "no_anchor": {"motion": "full", "anchor": "empty", "holistic": "sad"},
    "no_holi": {"motion": "full", "anchor": "sad", "holistic": "empty"},
    "no_motion": {"motion": "no_motion", "anchor": "sad", "holistic": "sad"},
    "ridge": {"motion": "ridge", "anchor": "ridge", "holistic": "ridge"},
    "oracle": {"motion": "oracle", "anchor": "truth", "holistic": "truth"},
}
ABLATIONS = ("no_anchor", "no_holi", "no_motion")


def anchor_variant(variant):
    """no_holi renders its video from full's anchor frame (the anchor semantics are all there)."""
    return "full" if variant == "no_holi" else variant


def source_kind(source):
    return "decoded" if source in ("sad", "ridge") else source


def check_render_variants():
    for variant in config["render"]["variants"]:
        sources = RENDER_SOURCES[variant]
        if sources["motion"] not in config["mad"]["variants"]:
            raise ValueError(f"config: render.variants {variant} needs mad.variants {sources['motion']}")
        for level in ("anchor", "holistic"):
            if source_kind(sources[level]) != "decoded":
                continue
            if sources[level] not in config["sad"]["variants"] or level not in config["sad"]["levels"]:
                raise ValueError(
                    f"config: render.variants {variant} needs sad.variants {sources[level]} and {level} in sad.levels"
                )


check_render_variants()


def check_render_steps():
    """A render runs int(strength x steps) steps of its schedule (img2img's rule): at least one."""
    for section, key in (("anchor", "strength"), ("video", "init_strength")):
        settings = config["render"][section]
        if int(settings[key] * settings["steps"]) < 1:
            raise ValueError(
                f"config: render.{section}.{key} {settings[key]} x steps {settings['steps']} leaves no denoising "
                "step; raise either"
            )


check_render_steps()


if config["mad"]["init"] == "ridge" and not config["mad"]["model"]["linear_readout"]:
    raise ValueError("config: mad.init ridge starts the linear readout: it needs mad.model.linear_readout true")


def decoded_tokens(dataset, variant, subject, level):
    """{level: decodes file} when the variant's tokens of `level` are decoded, else {}; the truth file always."""
    source = RENDER_SOURCES[variant][level]
    inputs = {f"{level}_truth": f"data/{dataset}/embeds/{level}.safetensors"}
    if source_kind(source) == "decoded":
        inputs[level] = f"predictions/{dataset}/{source}/{subject}/{level}.safetensors"
    return inputs


def anchor_render_inputs(wildcards):
    check_variant_subject(wildcards)
    dataset, subject, variant = wildcards.dataset, wildcards.subject, wildcards.variant
    motion = RENDER_SOURCES[variant]["motion"]
    return {
        "motion_frames": f"predictions/{dataset}/{motion}/{subject}/motion_frames.h5",
        **decoded_tokens(dataset, variant, subject, "anchor"),
    }


def anchor_render_settings(variant):
    section = config["render"]
    return {
        "variant": variant,
        "source": source_kind(RENDER_SOURCES[variant]["anchor"]),
        "anchor": section["anchor"],
        "clips": section["ablation_clips"] if variant in ABLATIONS else None,
        **effective_precision({k: section[k] for k in ("batch_size", "device", "dtype")}),
    }


def video_render_inputs(wildcards):
    check_variant_subject(wildcards)
    dataset, subject, variant = wildcards.dataset, wildcards.subject, wildcards.variant
    motion = RENDER_SOURCES[variant]["motion"]
    return {
        "motion_frames": f"predictions/{dataset}/{motion}/{subject}/motion_frames.h5",
        "anchor": f"videos/{dataset}/{anchor_variant(variant)}/{subject}/anchor.h5",
        **decoded_tokens(dataset, variant, subject, "holistic"),
    }


PREVIEW_KEYS = ("fps",)  # render.video keys that shape only the previews (rule preview_video), not the frames


def video_render_settings(variant):
    section = config["render"]
    return {
        "variant": variant,
        "holistic": source_kind(RENDER_SOURCES[variant]["holistic"]),
        "video": {k: v for k, v in section["video"].items() if k not in PREVIEW_KEYS},
        "clips": section["ablation_clips"] if variant in ABLATIONS else None,
        **effective_precision({k: section[k] for k in ("batch_size", "device", "dtype")}),
    }


def preview_inputs(wildcards):
    check_variant_subject(wildcards)
    dataset, subject, variant = wildcards.dataset, wildcards.subject, wildcards.variant
    return {
        "video": f"videos/{dataset}/{variant}/{subject}/video.h5",
        "motion_frames": f"predictions/{dataset}/{RENDER_SOURCES[variant]['motion']}/{subject}/motion_frames.h5",
        "anchor": f"videos/{dataset}/{anchor_variant(variant)}/{subject}/anchor.h5",
        "clips": f"data/{dataset}/clips/test.h5",
    }


def preview_settings():
    return {**{k: config["render"]["video"][k] for k in PREVIEW_KEYS}, "sheet_clips": config["render"]["sheet_clips"]}


def demo_labelling():
    """How the demo's clip files sample frames: what world.labels needs to label them."""
    return {
        "protocol": config["clips"]["protocol"],
        "fps": demo_world_config().fps,
        "clip_seconds": clip_seconds("demo"),
    }


JUDGE_SLOTS = ("image_classifier", "video_classifier", "clip_image", "vifi_clip")
DEMO_JUDGE = "models/demo/video_judge"  # rule train_video_judge


def check_evaluation():
    for variant in evaluation_variants():
        if variant == "motion_frames" and "full" not in config["mad"]["variants"]:
            raise ValueError(
                "config: evaluation.variants has motion_frames (MAD's full variant); add full to mad.variants"
            )
        if variant != "motion_frames" and variant not in config["render"]["variants"]:
            raise ValueError(f"config: evaluation.variants has {variant!r}, which render.variants does not render")
    if config["evaluation"]["frames"] and config["evaluation"]["frames"] % 2:
        raise ValueError("config: evaluation.frames must be even (VideoMAE judges clips in tubelets of 2 frames)")


def evaluation_variants():
    chosen = config["evaluation"]["variants"]
    return list(chosen) if chosen else [*config["render"]["variants"], "motion_frames"]


def reconstruction(dataset, variant, subject):
    """The frames a table row scores: a render variant's videos, or MAD's full motion frames."""
    if variant == "motion_frames":
        return f"predictions/{dataset}/full/{subject}/motion_frames.h5"
    return f"videos/{dataset}/{variant}/{subject}/video.h5"


def judge_inputs(dataset):
    """The judges' files (checked only when a job needs them: the early stages run with any judges)."""
    files = set()
    for slot in JUDGE_SLOTS:
        entry = config["models"][slot]
        if entry["backend"] == "demo":
            if dataset != "demo":
                raise ValueError(
                    f"config: models.{slot}.backend demo is the demo world's own judge (it learns the world's "
                    f"scene labels); to evaluate {dataset} set a real backend and its path (configs/{dataset}.yaml)"
                )
            files.add(DEMO_JUDGE)
        elif entry["backend"] != "efficientnet_lite0" and not entry["path"]:
            raise ValueError(f"config: models.{slot}.backend {entry['backend']} needs models.{slot}.path")
        else:
            files |= set(model_files(slot))
    return sorted(files)


def judge_settings(dataset):
    """Rules judge_truth and evaluate: which judge each slot uses, and where the demo's is."""
    return {
        "models": {slot: dict(config["models"][slot]) for slot in JUDGE_SLOTS},
        "demo_folder": DEMO_JUDGE,
        **judge_runtime(config, JUDGE_SLOTS),
    }


def evaluation_protocol():
    """What the ground truth's judging depends on."""
    return {k: config["evaluation"][k] for k in ("frames", "size")}


def flow_settings():
    """What the ground truth's Farnebäck flows depend on (rule truth_flows)."""
    return {k: config["evaluation"][k] for k in ("frames", "size", "epe_size", "epe_bgr_quirk")}


def uses_truth_flows():
    """Whether evaluate reads the truth's flows that rule truth_flows stores. It does where the config asks for
    it and one truth serves every reconstruction (the references' GIF packing gives each its own truth half)."""
    return config["evaluation"]["cache_truth_flows"] and not config["evaluation"]["reference_packing"]


def scoring_settings():
    """Rule evaluate's knobs: the evaluation section less what only the table (variants, sample_clips) or the
    judges (stand_in_size, vifi_bgr_quirk, batch_size, device, dtype: judge_settings) read, whether the truth's
    flows are stored (its inputs say), and the VIFI gate where CLIP-PCC has none."""
    judges = {"stand_in_size", "vifi_bgr_quirk", "batch_size", "device", "dtype"}
    skip = {"variants", "sample_clips", "cache_truth_flows", *judges}
    if config["evaluation"]["clip_pcc"] != "ma_adjacent_gated":
        skip.add("vifi_gate")
    return {k: v for k, v in config["evaluation"].items() if k not in skip}


def evaluation_inputs(wildcards):
    if wildcards.variant != "motion_frames":
        check_variant_subject(wildcards)
    d = wildcards.dataset
    inputs = {
        "reconstruction": reconstruction(d, wildcards.variant, wildcards.subject),
        "truth": f"data/{d}/clips/test.h5",
        "judged": f"data/{d}/judged/test.h5",
        "judges": judge_inputs(d),
    }
    if uses_truth_flows():
        inputs["flows"] = f"data/{d}/flows/test.h5"
    if d == "demo":
        inputs |= {"probe": "models/demo/probe.safetensors", "ground_truth": str(demo_world_files().ground_truth)}
    return inputs


def evaluated_clip_files():
    """(per-clip CSV, [dataset, variant, subject]) of every row of the table."""
    return [
        (f"results/{d}/clips/{v}/{s}.csv", [d, v, s])
        for d in config["datasets"]
        for v in evaluation_variants()
        for s in variant_subjects(d, v)
    ]


def sample_settings():
    """Per dataset: the ground truth, its judged outputs (the judges' class counts) and each variant's
    reconstruction for the first subject (the frame grids)."""
    return {
        d: {
            "truth": f"data/{d}/clips/test.h5",
            "judged": f"data/{d}/judged/test.h5",
            "reconstructions": {v: reconstruction(d, v, variant_subjects(d, v)[0]) for v in evaluation_variants()},
        }
        for d in config["datasets"]
    }


def sample_inputs():
    files = []
    for sample in sample_settings().values():
        files += [sample["truth"], sample["judged"], *sample["reconstructions"].values()]
    return files


check_evaluation()


def final_outputs():
    """The main job: the evaluation's tables and figures (which need every stage), SAD's retrieval tables, and the
    renders' previews (an mp4 per clip and a side-by-side sheet)."""
    targets = ["results/metrics.csv", "results/metrics.md"]
    targets += [f"results/{dataset}/semantic_retrieval.csv" for dataset in config["datasets"]]
    for dataset, variant, subject in rendered_videos():
        targets += [f"videos/{dataset}/{variant}/{subject}/mp4", f"videos/{dataset}/{variant}/{subject}/sheet.mp4"]
    return targets


def rendered_videos():
    """(dataset, variant, subject) of every render the table scores: what rule preview_video shows."""
    return [(d, v, s) for _, (d, v, s) in evaluated_clip_files() if v != "motion_frames"]
