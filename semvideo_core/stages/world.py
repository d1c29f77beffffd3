"""Stage of rules/world.smk: demo_world, the demo world in the raw CC2017 layout."""

from __future__ import annotations

from pathlib import Path

from ..world.config import WorldConfig
from ..world.generate import generate_world


def demo_world(settings: dict, raw_dir, declared_outputs: list, workers: int = 1) -> None:
    """Generate the world of the config's demo.world section under `raw_dir`; the files written must be exactly
    the rule's declared outputs."""
    files = generate_world(WorldConfig.from_dict(settings), raw_dir, workers=workers)
    written, expected = sorted(map(str, files.all())), sorted(str(Path(p)) for p in declared_outputs)
    if written != expected:
        raise RuntimeError(f"demo_world wrote {len(written)} files but the rule declares {len(expected)}")
