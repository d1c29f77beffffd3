"""The demo world: seeded scenes, exact captions and simulated fMRI, written in the raw CC2017 layout."""

from .config import NoiseConfig, WorldConfig
from .generate import WorldFiles, generate_world, world_files

__all__ = ["NoiseConfig", "WorldConfig", "WorldFiles", "generate_world", "world_files"]
