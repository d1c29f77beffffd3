"""Rule captions: import released caption CSVs, or mine the captions with SemMiner (starting the server if asked)."""

import contextlib

from semvideo_core.logs import log_to_file
from semvideo_core.semminer.captions import import_caption_tables, write_caption_tables
from semvideo_core.semminer.frames import ClipStore
from semvideo_core.semminer.miner import MinerConfig, mine_captions
from semvideo_core.semminer.server import launched_server

with log_to_file(snakemake.log[0]):
    outputs = dict(zip(snakemake.params.levels, snakemake.output))
    clip_ids = ClipStore(snakemake.input.clips).clip_ids
    if snakemake.params.source == "precomputed":
        settings = snakemake.params.precomputed
        tables = import_caption_tables(
            {level: snakemake.input[level] for level in outputs},
            clip_ids,
            settings["id_column"],
            settings["text_column"],
        )
    else:
        settings = dict(snakemake.params.semminer)
        server = settings.pop("server")
        model = settings.pop("model")
        if server["mode"] == "launch":
            fields = {"model": model, "model_path": snakemake.params.model_path}
            running = launched_server(
                server["command"], fields, snakemake.params.server_log, server["startup_timeout_s"]
            )
        else:
            running = contextlib.nullcontext(server["base_url"])
        with running as base_url:
            config = MinerConfig.from_dict(settings, model=model, base_url=base_url, api_key_env=server["api_key_env"])
            tables = mine_captions(snakemake.input.clips, config, snakemake.params.cache)
    write_caption_tables(tables, clip_ids, outputs)
