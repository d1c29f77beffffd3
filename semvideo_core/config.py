"""Config defaults, taken from the schema alone (schemas/config.schema.yaml) and merged deeply.

A plain JSON-schema default applies only where a key is missing: a user section such as
`resources: {train_sad: {gpu: 1}}` would replace the whole default of `train_sad` and fall back to the generic
defaults of its `$ref`. Here the default of every object is merged under the user's value key by key, recursively,
so a partial override keeps every other default of its section. The typed config classes of the library
(WorldConfig, TrainConfig, SADConfig, ...) repeat these defaults for library users; tests/test_config.py holds them
to the schema.
"""

from __future__ import annotations

import copy


def _resolve(node: dict, root: dict) -> dict:
    """A schema node with its local `$ref` ("#/$defs/name") merged in (the node's own keywords win)."""
    if "$ref" not in node:
        return node
    target = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    merged = {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}
    if "properties" in target and "properties" in node:  # a node may narrow some properties of its $ref
        merged["properties"] = {
            name: {**target["properties"].get(name, {}), **node["properties"].get(name, {})}
            for name in {**target["properties"], **node["properties"]}
        }
    return merged


def _merge(default, value):
    if isinstance(default, dict) and isinstance(value, dict):
        return {**default, **{k: _merge(default.get(k), v) for k, v in value.items()}}
    return value


MISSING = object()


def _fill(value, node: dict, root: dict):
    """-> value with defaults, or MISSING where the key is absent and has no default (an explicit null stays)."""
    node = _resolve(node, root)
    if value is MISSING:
        value = copy.deepcopy(node.get("default", MISSING))
    elif "default" in node:
        value = _merge(node["default"], value)
    if isinstance(value, dict) and "properties" in node:
        for name, child in node["properties"].items():
            filled = _fill(value.get(name, MISSING), child, root)
            if filled is not MISSING:
                value[name] = filled
    return value


def _canonical(value, node: dict, root: dict):
    """`value` with every mapping in one fixed key order: the schema's properties first, in the schema's order,
    then any other keys sorted. Snakemake compares a rule's params by their repr, in which key order counts, so
    without this a default written out, or keys listed in another order, would rerun a rule with the same values."""
    node = _resolve(node, root)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_canonical(item, node["items"], root) for item in value]
    if not isinstance(value, dict):
        return value
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    others = sorted((key for key in value if key not in properties), key=str)
    ordered = [key for key in properties if key in value] + others
    return {
        key: _canonical(value[key], properties.get(key, extra if isinstance(extra, dict) else {}), root)
        for key in ordered
    }


def with_defaults(config: dict, schema: dict) -> dict:
    """`config` with every default of `schema` filled in, object defaults merged under the user's values, and its
    mappings in the schema's key order (`_canonical`)."""
    return _canonical(_fill(copy.deepcopy(config), schema, schema), schema, schema)


# How often a training job saves its state, not what it learns: the rules keep these keys out of their params and
# the resume fingerprint leaves them out, so a new interval neither retrains anything nor discards a checkpoint.
CHECKPOINTING_KEYS = ("checkpoint_every",)


def without_checkpointing(settings):
    """A rule's settings with every training phase's checkpoint interval taken out, at any depth."""
    if not isinstance(settings, dict):
        return settings
    return {key: without_checkpointing(value) for key, value in settings.items() if key not in CHECKPOINTING_KEYS}


def with_checkpointing(settings, section):
    """`settings` (from `without_checkpointing`) with the intervals of `section`, the config they came from, back."""
    if not isinstance(settings, dict) or not isinstance(section, dict):
        return settings
    restored = {key: with_checkpointing(value, section.get(key)) for key, value in settings.items()}
    restored.update({key: section[key] for key in CHECKPOINTING_KEYS if key in section})
    return restored


def effective_precision(settings: dict) -> dict:
    """A job's settings (`device` with `dtype` or `precision`) as the job applies them: only CUDA devices run
    float16 / bfloat16, a job on any other device runs float32 whatever they say, so there they read float32 / fp32
    and a change to them reruns no CPU job. (Not for the text embeddings: their `dtype` is how they are stored.)"""
    if str(settings.get("device", "cpu")).split(":")[0] == "cuda":
        return dict(settings)
    full = {"dtype": "float32", "precision": "fp32"}
    return {key: full.get(key, value) for key, value in settings.items()}


def training_params(section):
    """A config section with training phases in it (the mappings with a checkpoint interval), as a rule's params:
    each phase without its interval (the script puts it back: `with_checkpointing`) and with its precision as its
    device applies it."""
    if not isinstance(section, dict):
        return section
    if CHECKPOINTING_KEYS[0] in section:
        return effective_precision(without_checkpointing(section))
    return {key: training_params(value) for key, value in section.items()}


def embed_params(config: dict) -> dict:
    """Rule embed_text's settings: the embed section, less the token count where the text encoder fixes its own
    (the CLIP backends' 77): only minilm reads `tokens`."""
    uses_tokens = config["models"]["text_encoder"]["backend"] == "minilm"
    return {key: value for key, value in config["embed"].items() if key != "tokens" or uses_tokens}


def judge_runtime(config: dict, slots) -> dict:
    """The evaluation settings the judges of `slots` read: batch size, device and precision (as the device applies
    it), the side the EfficientNet-Lite0 stand-in sees where a slot uses it, and ViFi-CLIP's channel swap where a slot
    uses ViFi-CLIP (no other judge reads either)."""
    backends = {config["models"][slot]["backend"] for slot in slots}
    keys = ["stand_in_size"] * ("efficientnet_lite0" in backends) + ["batch_size", "device", "dtype"]
    keys += ["vifi_bgr_quirk"] * ("vifi_clip" in backends)
    return effective_precision({key: config["evaluation"][key] for key in keys})
