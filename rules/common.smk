# Config validation and every input/target helper of the workflow.
from pathlib import Path

from snakemake.utils import validate

from semvideo_core.world import WorldConfig, world_files

validate(config, "../schemas/config.schema.yaml", set_default=True)

for _dataset in config["datasets"]:
    if _dataset != "demo" and not config[_dataset]["raw_dir"]:
        raise ValueError(
            f"config: datasets includes {_dataset!r} but {_dataset}.raw_dir is not set; "
            f"point it at the downloaded {_dataset} data"
        )


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


def final_outputs():
    """Final targets: the last stage implemented, for every enabled dataset."""
    targets = []
    if "demo" in config["datasets"]:
        targets += [str(path) for path in demo_world_files().all()]
    return targets
