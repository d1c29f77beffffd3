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
