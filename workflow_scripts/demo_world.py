"""Rule demo_world: generate the demo world in the raw CC2017 layout."""

from pathlib import Path

from semvideo_core.logs import log_to_file
from semvideo_core.world import WorldConfig, generate_world

with log_to_file(snakemake.log[0]):
    config = WorldConfig.from_dict(snakemake.params.world)
    files = generate_world(config, snakemake.params.raw_dir, workers=snakemake.threads)
    written, expected = sorted(map(str, files.all())), sorted(map(str, map(Path, snakemake.output)))
    if written != expected:
        raise RuntimeError(f"demo_world wrote {len(written)} files but the rule declares {len(expected)}")
