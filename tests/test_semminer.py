"""SemMiner against a real loopback HTTP server that speaks the OpenAI chat-completions API (tests/openai_server.py),
with scripted faults: stage-2 prompts carry the stage-1 summary, the word limit holds, faults are retried,
persistent failures name their clips, and a killed run resumes to exactly the CSVs of an uninterrupted one."""

import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest

from semvideo_core.io.captions import import_captions, read_captions, write_captions
from semvideo_core.semminer.cache import AnswerCache
from semvideo_core.semminer.frames import FrameSettings, pick_frames
from semvideo_core.semminer.miner import FatalRequestError, MinerConfig, SemMinerError, mine_captions
from semvideo_core.semminer.prompts import LEVELS, Prompts, count_words, truncate_words
from semvideo_core.semminer.server import free_port, launched_server

from .openai_server import FakeVLLM, Script

REPO = Path(__file__).resolve().parents[1]
MODEL = "test-vl"


def write_clips(path, clip_ids, seed):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as h5:
        h5["frames"] = rng.integers(0, 256, size=(len(clip_ids), 6, 32, 32, 3), dtype=np.uint8)
        h5.create_dataset("clip_id", data=clip_ids, dtype=h5py.string_dtype())
    return path


@pytest.fixture
def clip_files(tmp_path):
    train = write_clips(tmp_path / "train.h5", [f"seg1_{j}" for j in range(1, 7)], seed=0)
    test = write_clips(tmp_path / "test.h5", [f"test1_{j}" for j in range(1, 4)], seed=1)
    return [train, test]


def miner_config(server, **overrides):
    settings = dict(in_flight=4, attempts=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=2.0)
    settings.update(overrides)
    return MinerConfig(model=MODEL, base_url=server.base_url, frames=FrameSettings(count=4, size=32), **settings)


def all_clip_ids(clip_files):
    return [f"seg1_{j}" for j in range(1, 7)] + [f"test1_{j}" for j in range(1, 4)]


def test_stage2_prompts_carry_the_stage1_summary(clip_files, tmp_path):
    with FakeVLLM(MODEL) as server:
        results = mine_captions(clip_files, miner_config(server), tmp_path / "cache")
    assert set(results["basic"]) == set(all_clip_ids(clip_files))
    for level in LEVELS:
        requests = server.completed(level)
        assert len(requests) == 9
        for request in requests:
            assert f'"{results["basic"][request.clip_id]}"' in request.prompt
            assert request.n_images == 4  # all frames in one message
    assert all(count_words(text) <= 20 for text in results["basic"].values())


def test_over_long_summaries_are_reasked_then_truncated(clip_files, tmp_path, caplog):
    # seg1_1 answers too long once (the re-ask fixes it); seg1_2 always (truncated after 2 re-asks, with a warning)
    script = Script(long_basic={"basic/seg1_1": 1, "basic/seg1_2": 99})
    with FakeVLLM(MODEL, script) as server, caplog.at_level(logging.WARNING):
        results = mine_captions(clip_files, miner_config(server, reask=2), tmp_path / "cache")
    basics = [r for r in server.completed("basic")]
    assert sum(r.clip_id == "seg1_1" for r in basics) == 2
    assert sum(r.clip_id == "seg1_2" for r in basics) == 3  # the first ask and 2 re-asks
    reask = [r for r in basics if r.clip_id == "seg1_1" and r.turns == 3][0]
    assert "at most 20 words" in reask.prompt
    assert count_words(results["basic"]["seg1_1"]) <= 20 and count_words(results["basic"]["seg1_2"]) == 20
    assert "truncated to 20" in caplog.text and "seg1_2" in caplog.text


def test_faults_are_retried(clip_files, tmp_path):
    script = Script(
        fail_5xx={"seg1_1": 2, "motion/seg1_3": 3},
        hang={"basic/seg1_4": 1},
        hang_s=1.0,
        malformed={"anchor/seg1_5": 2},
        empty={"holistic/test1_1": 1},
    )
    with FakeVLLM(MODEL, script) as faulty_server:
        faulty = mine_captions(clip_files, miner_config(faulty_server, timeout_s=0.4), tmp_path / "faulty")
    with FakeVLLM(MODEL) as clean_server:
        clean = mine_captions(clip_files, miner_config(clean_server, timeout_s=0.4), tmp_path / "clean")
    assert faulty == clean
    assert {r.outcome for r in clean_server.requests} == {"ok"}
    # The faulty server saw every scripted fault, each followed by a retry, and then one good answer per request.
    faults = Counter((r.outcome, r.level, r.clip_id) for r in faulty_server.requests if r.outcome != "ok")
    assert faults == Counter(
        {
            **{("5xx", level, "seg1_1"): 2 for level in ("basic", "anchor", "motion", "holistic")},
            ("5xx", "motion", "seg1_3"): 3,
            ("hang", "basic", "seg1_4"): 1,
            ("malformed", "anchor", "seg1_5"): 2,
            ("empty", "holistic", "test1_1"): 1,
        }
    )
    answered = Counter((r.level, r.clip_id) for r in faulty_server.requests if r.outcome == "ok")
    assert answered == Counter((r.level, r.clip_id) for r in clean_server.requests)


def test_persistent_failure_names_the_clips_and_keeps_the_cache(clip_files, tmp_path):
    script = Script(always_fail={"seg1_2", "test1_3"})
    with FakeVLLM(MODEL, script) as server:
        with pytest.raises(SemMinerError, match=r"2 clips failed: seg1_2: HTTP 503 after 3 attempts; test1_3") as error:
            mine_captions(clip_files, miner_config(server, attempts=3), tmp_path / "cache")
    assert set(error.value.failed) == {"seg1_2", "test1_3"}
    with AnswerCache(tmp_path / "cache" / "expand.jsonl") as cache:
        assert len(cache) == 7 * 3  # every other clip's answers are kept
    # once the server recovers, only the failed clips are asked
    with FakeVLLM(MODEL) as server:
        mine_captions(clip_files, miner_config(server), tmp_path / "cache")
    assert {r.clip_id for r in server.requests} == {"seg1_2", "test1_3"}


def test_unknown_model_stops_at_once(clip_files, tmp_path):
    with FakeVLLM("another-model") as server:
        with pytest.raises(FatalRequestError, match="serves \\['another-model'\\], not the configured model"):
            mine_captions(clip_files, miner_config(server), tmp_path / "cache")
    assert not server.requests


def test_refused_connections_are_retried_then_named(clip_files, tmp_path):
    port = free_port()
    config = MinerConfig(
        model=MODEL, base_url=f"http://127.0.0.1:{port}/v1", attempts=6, backoff_s=0.2, max_backoff_s=0.4
    )
    late = threading.Timer(0.3, lambda: servers.append(FakeVLLM(MODEL, port=port).start()))
    servers = []
    late.start()  # the server comes up while the client is already retrying
    try:
        results = mine_captions(clip_files[1:], config, tmp_path / "cache")
    finally:
        late.join()
        servers[0].stop()
    assert len(results["holistic"]) == 3
    with pytest.raises(FatalRequestError, match=f"no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1"):
        mine_captions(clip_files, dataclasses.replace(config, attempts=2), tmp_path / "other")


KILLABLE = """
import sys
from semvideo_core.semminer.frames import FrameSettings
from semvideo_core.semminer.miner import MinerConfig, mine_captions
config = MinerConfig(model="test-vl", base_url=sys.argv[1], in_flight=2, frames=FrameSettings(count=4, size=32))
mine_captions(sys.argv[2].split(","), config, sys.argv[3])
"""


def test_a_killed_run_resumes_to_the_same_csvs_without_repeating_requests(clip_files, tmp_path):
    ids = all_clip_ids(clip_files)
    with FakeVLLM(MODEL, Script(latency_s=0.05)) as server:
        reference = mine_captions(clip_files, miner_config(server), tmp_path / "reference")
        command = [
            sys.executable,
            "-c",
            KILLABLE,
            server.base_url,
            ",".join(map(str, clip_files)),
            str(tmp_path / "cache"),
        ]
        child = subprocess.Popen(command, cwd=REPO)
        journal = tmp_path / "cache" / "expand.jsonl"
        deadline = time.monotonic() + 60
        while not (journal.exists() and journal.read_text().count("\n") >= 6) and time.monotonic() < deadline:
            time.sleep(0.01)
        child.kill()
        child.wait()
        with open(journal, "ab") as handle:  # a record torn mid-write, as a kill during write() leaves
            handle.write(b'{"key": "torn", "te')
        with AnswerCache(tmp_path / "cache" / "basic.jsonl") as basic, AnswerCache(journal) as expand:
            done = {(r["level"], r["clip_id"]) for r in [*basic.records.values(), *expand.records.values()]}
        assert 6 <= len(done) < 4 * len(ids)
        server.requests.clear()
        resumed = mine_captions(clip_files, miner_config(server), tmp_path / "cache")
    asked = {(r.level, r.clip_id) for r in server.requests}
    assert not asked & done  # finished requests are not repeated
    assert len(asked) == 4 * len(ids) - len(done)
    assert resumed == reference
    for level in ("basic", *LEVELS):  # and the CSVs are byte for byte those of the uninterrupted run
        write_captions(tmp_path / "a" / f"{level}.csv", reference[level], ids)
        write_captions(tmp_path / "b" / f"{level}.csv", resumed[level], ids)
        assert (tmp_path / "a" / f"{level}.csv").read_bytes() == (tmp_path / "b" / f"{level}.csv").read_bytes()


def test_video_mode_sends_one_video(clip_files, tmp_path):
    with FakeVLLM(MODEL) as server:
        config = dataclasses.replace(miner_config(server), frames=FrameSettings(count=6, size=32, mode="video"))
        mine_captions(clip_files[1:], config, tmp_path / "cache")
    assert all(r.n_videos == 1 and r.n_images == 0 for r in server.completed())


def test_changing_a_prompt_reasks_only_what_depends_on_it(clip_files, tmp_path):
    with FakeVLLM(MODEL) as server:
        mine_captions(clip_files, miner_config(server), tmp_path / "cache")
        server.requests.clear()
        prompts = Prompts(motion=Prompts().motion + " Mention the direction.")
        mine_captions(clip_files, dataclasses.replace(miner_config(server), prompts=prompts), tmp_path / "cache")
    assert {r.level for r in server.requests} == {"motion"} and len(server.requests) == 9


def test_other_weights_under_the_same_served_name_ask_again(clip_files, tmp_path):
    """A launched server is known by its weights' path and launch command as well as the name it serves: mining with
    other weights asks every request again; back on the first ones, everything comes from the cache."""
    first, other = '{"model_path": "/models/a"}', '{"model_path": "/models/b"}'
    with FakeVLLM(MODEL) as server:
        mine_captions(clip_files, miner_config(server, weights=first), tmp_path / "cache")
        server.requests.clear()
        mine_captions(clip_files, miner_config(server, weights=other), tmp_path / "cache")
        assert len(server.requests) == 4 * 9
        server.requests.clear()
        mine_captions(clip_files, miner_config(server, weights=first), tmp_path / "cache")
        mine_captions(clip_files, miner_config(server, weights=other), tmp_path / "cache")
        assert not server.requests


def test_launched_server_is_waited_for_and_stopped(tmp_path):
    script = str(REPO / "tests" / "openai_server.py")
    command = [sys.executable, script, "--port", "{port}", "--model", "{model}", "--startup-delay", "1"]
    log_path = tmp_path / "server.log"
    with launched_server(command, {"model": MODEL}, log_path, startup_timeout_s=30) as base_url:
        models = json.load(urllib.request.urlopen(base_url + "/models"))
        assert models["data"][0]["id"] == MODEL
    with pytest.raises(OSError):  # stopped with the block
        urllib.request.urlopen(base_url + "/models", timeout=2)
    with pytest.raises(RuntimeError, match="(?s)exited with code 3 before it was ready:.*no GPU"):
        with launched_server([sys.executable, "-c", "print('no GPU'); raise SystemExit(3)"], {}, log_path):
            pass


def test_word_limit_helpers():
    assert count_words("  a  quick\tbrown fox ") == 4
    assert truncate_words("one two, three four", 2) == "one two"
    assert truncate_words("short one", 5) == "short one"
    with pytest.raises(ValueError, match="must contain the field {basic}"):
        Prompts.from_dict({"motion": "Describe the motion."})


def test_pick_frames_is_even_and_keeps_the_ends():
    clip = np.arange(8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert pick_frames(clip, 4)[:, 0, 0, 0].tolist() == [0, 2, 5, 7]
    assert pick_frames(clip, 20).shape[0] == 8


def test_precomputed_captions_are_mapped_and_checked(tmp_path):
    path = tmp_path / "img_descriptions.csv"
    path.write_text('Video,Text\nseg1_1,a red ball\nseg1_2,"a blue cube, spinning"\n')
    assert import_captions(path, ["seg1_2", "seg1_1"], "Video", "Text") == {
        "seg1_2": "a blue cube, spinning",
        "seg1_1": "a red ball",
    }
    with pytest.raises(ValueError, match="1 of 3 clips have no caption, e.g. \\['test1_1'\\]"):
        import_captions(path, ["seg1_1", "seg1_2", "test1_1"], "Video", "Text")
    with pytest.raises(ValueError, match="no column \\['clip_id', 'description'\\]"):
        read_captions(path)
    write_captions(tmp_path / "out.csv", {"a": "x, y", "b": "z"}, ["b", "a"])
    assert read_captions(tmp_path / "out.csv") == {"b": "z", "a": "x, y"}
