"""Stage of rules/semminer.smk: captions, imported from released CSVs or mined with SemMiner."""

from __future__ import annotations

import contextlib
import json

from ..io.captions import import_caption_tables, write_caption_tables
from ..semminer.frames import ClipStore
from ..semminer.miner import MinerConfig, mine_captions
from ..semminer.server import launched_server


def captions(clip_files: list, outputs: dict, source: str, settings: dict, inputs: dict, cache_dir, server_log) -> None:
    """Write `outputs` (level -> CSV), one row per clip of `clip_files`. source "precomputed": `settings` is
    captions.precomputed and `inputs` maps each level to its released CSV; "semminer": `settings` is
    captions.semminer plus the captioner's `model_path` (a launched server), answers cached in `cache_dir`."""
    clip_ids = ClipStore(clip_files).clip_ids
    if source == "precomputed":
        tables = import_caption_tables(
            {level: inputs[level] for level in outputs}, clip_ids, settings["id_column"], settings["text_column"]
        )
    else:
        settings = dict(settings)
        server, model, model_path = settings.pop("server"), settings.pop("model"), settings.pop("model_path")
        weights = None
        if server["mode"] == "launch":
            fields = {"model": model, "model_path": model_path}
            running = launched_server(server["command"], fields, server_log, server["startup_timeout_s"])
            weights = json.dumps({"model_path": model_path, "command": server["command"]})
        else:
            running = contextlib.nullcontext(server["base_url"])
        with running as base_url:
            config = MinerConfig.from_dict(
                settings, model=model, weights=weights, base_url=base_url, api_key_env=server["api_key_env"]
            )
            tables = mine_captions(clip_files, config, cache_dir)
    write_caption_tables(tables, clip_ids, outputs)
