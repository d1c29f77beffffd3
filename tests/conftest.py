from pathlib import Path

import pytest
import yaml

from semvideo_core.world.config import WorldConfig
from semvideo_core.world.generate import generate_world

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"


def default_world_settings() -> dict:
    """The demo world section of the shipped config.yaml."""
    return yaml.safe_load((REPO / "config.yaml").read_text())["demo"]["world"]


def tiny_world_settings() -> dict:
    return {**default_world_settings(), **yaml.safe_load(TINY_CONFIG.read_text())["demo"]["world"]}


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """(config, files, directory) of a tiny world generated once for the session."""
    config = WorldConfig.from_dict(tiny_world_settings())
    out = tmp_path_factory.mktemp("tiny_world")
    files = generate_world(config, out, workers=2)
    return config, files, out
