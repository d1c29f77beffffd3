"""Config defaults: one source (the schema), merged deeply; the library's typed configs agree with it."""

import dataclasses

import pytest
import yaml

from semvideo_core.config import (
    effective_precision,
    embed_params,
    judge_runtime,
    training_params,
    with_checkpointing,
    with_defaults,
)
from semvideo_core.data.preprocess import PreprocessConfig
from semvideo_core.models.losses import MADLossWeights, SADLossWeights
from semvideo_core.models.mad import MADConfig
from semvideo_core.models.sad import SADConfig
from semvideo_core.semminer import without_connection, without_unused
from semvideo_core.semminer.frames import FrameSettings
from semvideo_core.semminer.miner import MinerConfig
from semvideo_core.training import TrainConfig
from semvideo_core.world.config import NoiseConfig, WorldConfig

from .conftest import REPO

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())


def test_a_partial_resources_override_keeps_the_rules_own_defaults():
    config = with_defaults({"resources": {"train_sad": {"gpu": 1}}}, SCHEMA)
    assert config["resources"]["train_sad"] == {"threads": 1, "mem_mb": 8000, "runtime": 720, "gpu": 1}
    assert config["resources"]["ridge"] == {"threads": 1, "mem_mb": 8000, "runtime": 120, "gpu": 0}


def test_a_partial_training_override_keeps_the_documented_phase_defaults():
    config = with_defaults({"sad": {"pretrain": {"epochs": 30}}}, SCHEMA)
    pretrain = config["sad"]["pretrain"]
    assert (pretrain["epochs"], pretrain["batch_size"], pretrain["lr"]) == (30, 128, 0.001)
    assert pretrain["weight_decay"] == 0.01 and pretrain["device"] == "cpu"  # from $defs/train
    assert config["sad"]["finetune"]["batch_size"] == 64


def test_an_explicit_null_is_kept_and_the_users_lists_replace_defaults():
    config = with_defaults({"captions": {"precomputed": {"files": {"basic": None}}}, "ridge": {"alphas": [5]}}, SCHEMA)
    files = config["captions"]["precomputed"]["files"]
    assert files["basic"] is None and files["anchor"] == "img_descriptions.csv"
    assert config["ridge"]["alphas"] == [5] and config["ridge"]["target"] == "flattened"


def test_the_shipped_config_is_complete_after_defaults():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    config = with_defaults(shipped, SCHEMA)
    assert config["sad"]["decode"] == {"refine": True, "steps": 10, "strength": 0.3, "seed": 0}
    assert config["cc2017"]["raw_dir"] is None and config["demo"]["world"] == shipped["demo"]["world"]


def _reversed_keys(value):
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_a_default_written_out_or_keys_in_another_order_give_the_same_params():
    """Snakemake compares a rule's params by their repr, where key order counts: neither writing a default value out
    nor listing a section's keys in another order may change it (it would rerun the rule with the same values)."""
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    spelled_out = _reversed_keys(shipped)
    spelled_out["embed"] = {"device": "cpu", "tokens": 32}  # defaults, in another order than the schema's
    spelled_out["render"] = {"video": {"seed": 0}, "anchor": {"steps": 10}}
    plain, spelled = with_defaults(shipped, SCHEMA), with_defaults(spelled_out, SCHEMA)
    assert plain == spelled
    assert all(repr(plain[section]) == repr(spelled[section]) for section in plain)
    # The order is the schema's, read from the schema itself.
    assert list(spelled["embed"]) == list(SCHEMA["properties"]["embed"]["properties"])
    assert list(spelled["demo"]["world"]) == list(SCHEMA["properties"]["demo"]["properties"]["world"]["properties"])
    runs = with_defaults({"hcp": {"runs": [{"movie": "m.mp4", "direction": "AP", "run": "MOVIE1"}]}}, SCHEMA)
    assert list(runs["hcp"]["runs"][0]) == list(
        SCHEMA["properties"]["hcp"]["properties"]["runs"]["items"]["properties"]
    )


def _phases(value, path=()):
    """(path, phase) of every training phase in a config: the mappings with a checkpoint interval."""
    if isinstance(value, dict):
        if "checkpoint_every" in value:
            yield path, value
        for key, child in value.items():
            yield from _phases(child, (*path, key))


TRAINED = ("sad", "mad", "vae", "probe", "video_judge", "t2i", "motion_adapter", "sparsectrl")


def test_training_params_leave_out_the_checkpoint_interval_and_the_script_puts_it_back():
    """How often a job saves is not what it learns: a rule's params carry no interval (a new one reruns nothing), and
    the script restores the user's."""
    config = with_defaults({"sad": {"pretrain": {"checkpoint_every": 7}}}, SCHEMA)
    # every training phase of the schema: SAD's and MAD's two, the VAE, the probe, the judge and the three generators
    assert {path for path, _ in _phases(config)} == {
        *((name, phase) for name in ("sad", "mad") for phase in ("pretrain", "finetune")),
        *((name, "train") for name in TRAINED[2:]),
    }
    for section in TRAINED:
        params = training_params(config[section])
        assert not list(_phases(params)), section
        phase = "pretrain" if section in ("sad", "mad") else "train"
        other = with_defaults({section: {phase: {"checkpoint_every": 1}}}, SCHEMA)
        assert params == training_params(other[section]), f"{section}: the interval is still in the params"
        assert with_checkpointing(params, config[section]) == config[section], section
    assert with_checkpointing(training_params(config["sad"]), config["sad"])["pretrain"]["checkpoint_every"] == 7
    # a rule's settings may carry keys of their own (train_vae adds the frame size)
    vae = training_params({**config["vae"], "size": 64})
    assert with_checkpointing(vae, config["vae"]) == {**config["vae"], "size": 64}


def test_half_precision_settings_change_the_params_of_gpu_jobs_only():
    """On the CPU every job runs float32 (backends.vae.load_vae, the generators, the judges, the training loop's
    autocast), so there `dtype` / `precision` read as such and a change reruns nothing; on CUDA they stay."""
    cpu = {"device": "cpu", "dtype": "bfloat16", "batch_size": 4}
    assert effective_precision(cpu) == {"device": "cpu", "dtype": "float32", "batch_size": 4}
    assert effective_precision({**cpu, "device": "mps"})["dtype"] == "float32"
    assert effective_precision({**cpu, "device": "cuda:1"}) == {**cpu, "device": "cuda:1"}
    config = with_defaults({"t2i": {"train": {"precision": "bf16"}}}, SCHEMA)
    assert training_params(config["t2i"])["train"]["precision"] == "fp32"
    assert training_params(with_defaults({}, SCHEMA)["t2i"]) == training_params(config["t2i"])
    gpu = with_defaults({"mad": {"finetune": {"device": "cuda", "precision": "bf16"}}}, SCHEMA)["mad"]["finetune"]
    assert training_params(gpu)["precision"] == "bf16"


def test_half_precision_runs_on_cuda_devices_only():
    import torch

    from semvideo_core.backends.precision import runtime_dtype

    assert runtime_dtype("cuda", "float16") == torch.float16 and runtime_dtype("cuda:1", "bfloat16") == torch.bfloat16
    assert runtime_dtype("cpu", "float16") == runtime_dtype("mps", "bfloat16") == torch.float32
    assert runtime_dtype("cuda", "float32") == torch.float32
    with pytest.raises(ValueError, match="dtype must be one of.*'half'"):
        runtime_dtype("cuda", "half")


def _schema_node(path: str) -> dict:
    node = SCHEMA
    for key in path.split("/"):
        node = node[key]
    if "$ref" in node:
        node = _schema_node(node["$ref"].removeprefix("#/"))
    return node


def _defaults(cls) -> dict:
    fields = [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
    return {f.name: f.default for f in fields}


@pytest.mark.parametrize(
    "cls, section",
    [
        (WorldConfig, "properties/demo/properties/world"),
        (NoiseConfig, "properties/demo/properties/world/properties/noise"),
        (PreprocessConfig, "properties/preprocess"),
        (TrainConfig, "$defs/train"),
        (SADConfig, "properties/sad/properties/model"),
        (SADLossWeights, "properties/sad/properties/loss"),
        (MADConfig, "properties/mad/properties/model"),
        (MADLossWeights, "properties/mad/properties/loss"),
        (MinerConfig, "properties/captions/properties/semminer"),
        (FrameSettings, "properties/captions/properties/semminer/properties/frames"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_library_config_defaults_agree_with_the_schema(cls, section):
    """The typed configs keep defaults for library users; the schema is the source, so they must match it."""
    properties = _schema_node(section)["properties"]
    defaults = {k: v for k, v in _defaults(cls).items() if k in properties}
    assert defaults, f"{cls.__name__} shares no field with {section}"
    schema_defaults = {k: properties[k]["default"] for k in defaults if "default" in properties[k]}
    as_schema = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items() if k in schema_defaults}
    assert as_schema == schema_defaults
    missing = sorted(k for k in _defaults(cls) if k not in properties)
    assert missing == sorted(UNCONFIGURED.get(cls.__name__, [])), f"{cls.__name__} fields not in the schema"


# Dataclass fields that the schema does not hold, because the workflow fills them (from other sections or data).
UNCONFIGURED = {
    # from captions.semminer.server, and (weights) models.captioner.path with the launch command
    "MinerConfig": ["api_key_env", "base_url", "weights"],
    "PreprocessConfig": ["lag_trs"],  # per dataset (demo.lag_trs, cc2017.lag_trs)
}


def _subschemas(node, path=""):
    """(path, schema) of every schema in the tree: the values of properties and $defs, and items."""
    yield path, node
    for key in ("properties", "$defs"):
        for name, child in node.get(key, {}).items():
            yield from _subschemas(child, f"{path}/{key}/{name}")
    if isinstance(node.get("items"), dict):
        yield from _subschemas(node["items"], f"{path}/items")


def test_every_schema_key_is_a_json_schema_keyword():
    """An unquoted comma in a YAML flow mapping ({..., description: a, b}) splits the description into stray keys,
    which JSON Schema ignores silently; the check is against jsonschema's own list of the draft's keywords."""
    from jsonschema import Draft202012Validator

    annotations = {"$schema", "$defs", "$id", "$comment", "title", "description", "default", "examples"}
    keywords = set(Draft202012Validator.VALIDATORS) | annotations
    stray = {path: sorted(set(node) - keywords) for path, node in _subschemas(SCHEMA) if set(node) - keywords}
    assert stray == {}


JUDGE_SLOTS = ("image_classifier", "video_classifier", "clip_image", "vifi_clip")
REAL_JUDGES = {
    "image_classifier": "vit",
    "video_classifier": "videomae",
    "clip_image": "clip",
    "vifi_clip": "vifi_clip",
}


def test_keys_a_backend_leaves_unread_are_not_in_the_params():
    """A setting only one backend or mode reads is in the params only where it is read, so that changing it elsewhere
    reruns nothing: embed.tokens (minilm only; CLIP fixes 77 tokens), evaluation.stand_in_size (the EfficientNet-Lite0
    stand-in judge only), SemMiner's launch command (a launched server only) and its frames' JPEG quality or video
    frame rate (whichever way the frames are not sent)."""
    demo = with_defaults({}, SCHEMA)
    assert embed_params(demo) == demo["embed"] and "tokens" in embed_params(demo)
    clip = {"models": {"text_encoder": {"backend": "clip", "path": "/models/clip"}}}
    assert "tokens" not in embed_params(with_defaults(clip, SCHEMA))
    assert embed_params(with_defaults(clip, SCHEMA)) == embed_params(
        with_defaults({**clip, "embed": {"tokens": 8}}, SCHEMA)
    )

    assert judge_runtime(demo, JUDGE_SLOTS)["stand_in_size"] == demo["evaluation"]["stand_in_size"]
    real = {"models": {slot: {"backend": backend, "path": "/models/x"} for slot, backend in REAL_JUDGES.items()}}
    runtime = judge_runtime(with_defaults(real, SCHEMA), JUDGE_SLOTS)
    assert set(runtime) == {"batch_size", "device", "dtype", "vifi_bgr_quirk"}
    assert "vifi_bgr_quirk" not in judge_runtime(demo, JUDGE_SLOTS)  # the demo's VIFI is its own video judge's
    bigger = with_defaults({**real, "evaluation": {"stand_in_size": 64}}, SCHEMA)
    assert judge_runtime(bigger, JUDGE_SLOTS) == runtime
    one_stand_in = {"models": {**real["models"], "clip_image": {"backend": "efficientnet_lite0", "path": None}}}
    assert "stand_in_size" in judge_runtime(with_defaults(one_stand_in, SCHEMA), JUDGE_SLOTS)

    def caption_params(semminer):
        return without_unused(
            without_connection(with_defaults({"captions": {"semminer": semminer}}, SCHEMA)["captions"]["semminer"])
        )

    url = caption_params({})
    assert "command" not in url["server"] and "video_fps" not in url["frames"] and "jpeg_quality" in url["frames"]
    assert caption_params({"server": {"command": ["other", "{model_path}"]}, "frames": {"video_fps": 5.0}}) == url
    assert caption_params({"frames": {"jpeg_quality": 50}}) != url
    launch = caption_params({"server": {"mode": "launch"}, "frames": {"mode": "video"}})
    assert launch["server"]["command"] == SCHEMA_SEMMINER_COMMAND and "jpeg_quality" not in launch["frames"]
    assert caption_params({"server": {"mode": "launch", "command": ["other"]}}) != caption_params(
        {"server": {"mode": "launch"}}
    )


SCHEMA_SEMMINER_COMMAND = SCHEMA["properties"]["captions"]["properties"]["semminer"]["properties"]["server"][
    "properties"
]["command"]["default"]
