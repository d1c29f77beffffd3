"""SemMiner's client: two-stage caption mining against any OpenAI-compatible chat-completions server (vLLM).

For every clip: stage 1 asks for the basic summary (the rein, at most `max_words` words: an over-long answer is
re-asked in the same conversation up to `reask` times, then truncated with a warning); stage 2 asks the anchor,
motion and holistic descriptions, each prompt carrying the stage-1 summary. At most `in_flight` requests are open
at once, so that vLLM's continuous batching stays fed, and at most `in_flight` clips' frames are in memory.

Every finished request is cached (cache.AnswerCache, one JSONL per stage) under a key of the clip id, the frames
hash, the request hash (prompt, conversation, sampling settings) and the model (for a server the job launches, its
weights' path and launch command too), so a rerun asks only what is missing and a killed run loses at most the
requests in flight. Transport faults (5xx, 429, timeouts, refused
connections) and empty or malformed answers are retried with bounded exponential backoff and full jitter; a clip
that still fails is reported at the end with every other failed clip, the cache intact. A 4xx that no retry can
fix (unknown model, bad request, authentication) stops the run at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import openai
from openai.types.chat import ChatCompletion
from tqdm import tqdm

from ..retry import backoff_delays
from .cache import AnswerCache
from .frames import ClipStore, FrameSettings, frames_hash, media_parts, prepare_frames
from .prompts import LEVELS, Prompts, clean_answer, count_words, request_hash, truncate_words

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}  # and every 5xx


@dataclass(frozen=True)
class MinerConfig:
    model: str  # the name the server serves the model under
    # A server the job launches: its weights' path and launch command (JSON), part of every cache key, so that other
    # weights or flags under the same served name ask again. None for a server we do not start: its name is all we know.
    weights: str | None = None
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "VLLM_API_KEY"  # the key is read from this environment variable, never from a file
    in_flight: int = 32
    temperature: float = 0.0
    max_tokens: int = 160
    seed: int = 0
    max_words: int = 20
    reask: int = 2
    attempts: int = 5  # tries per request, transport faults and empty or malformed answers alike
    backoff_s: float = 1.0  # first backoff; doubles per attempt, full jitter
    max_backoff_s: float = 30.0
    timeout_s: float = 120.0
    frames: FrameSettings = field(default_factory=FrameSettings)
    prompts: Prompts = field(default_factory=Prompts)

    @classmethod
    def from_dict(cls, settings: dict, **fields) -> "MinerConfig":
        """From the config's captions.semminer settings (less `server` and `model`) plus `fields`."""
        settings = dict(settings)
        frames = FrameSettings(**settings.pop("frames", {}))
        prompts = Prompts.from_dict(settings.pop("prompts", {}))
        return cls(frames=frames, prompts=prompts, **settings, **fields)

    @property
    def model_identity(self) -> dict:
        """What names the answering model in the cache keys."""
        return {"model": self.model, **({"weights": self.weights} if self.weights else {})}

    @property
    def sampling(self) -> dict:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}


class RequestFailed(RuntimeError):
    """A request that kept failing after every attempt."""


class FatalRequestError(RuntimeError):
    """A request the server rejects in a way no retry can fix (unknown model, bad request, authentication)."""


class SemMinerError(RuntimeError):
    """Clips that could not be captioned; the cache keeps every answer that did arrive."""

    def __init__(self, failed: dict[str, str]):
        self.failed = failed
        listed = "; ".join(f"{clip}: {reason}" for clip, reason in list(failed.items())[:20])
        more = f" (and {len(failed) - 20} more)" if len(failed) > 20 else ""
        super().__init__(f"{len(failed)} clips failed: {listed}{more}. Finished answers are cached; rerun to retry.")


def api_key(config: MinerConfig) -> str:
    # vLLM started without --api-key accepts any key; the client library needs a non-empty one.
    return os.environ.get(config.api_key_env) or "EMPTY"


class SemMiner:
    def __init__(
        self, config: MinerConfig, client: openai.AsyncOpenAI, basic_cache: AnswerCache, expand_cache: AnswerCache
    ):
        self.config, self.client = config, client
        self.caches = {"basic": basic_cache, "expand": expand_cache}
        self._slots = asyncio.Semaphore(config.in_flight)
        self.requests_sent = 0

    def _delays(self):
        config = self.config
        return backoff_delays(config.attempts, config.backoff_s, config.max_backoff_s, jitter=True)

    async def check_model(self) -> None:
        """Fail early, with the served names, when the server does not serve the configured model; a server that
        refuses connections (still starting) is retried like any request."""
        config = self.config
        for attempt, delay in enumerate(self._delays()):
            await asyncio.sleep(delay)
            try:
                served = [m.id async for m in self.client.models.list()]
                break
            except openai.APIConnectionError as error:
                if attempt == config.attempts - 1:
                    raise FatalRequestError(
                        f"no OpenAI-compatible server answers at {config.base_url} ({error})"
                    ) from error
        if config.model not in served:
            raise FatalRequestError(f"{config.base_url} serves {served}, not the configured model {config.model!r}")

    async def _complete(self, messages: list[dict], tag: str) -> str:
        """One chat completion, retried; -> the cleaned answer (never empty)."""
        config, reason = self.config, ""
        for attempt, delay in enumerate(self._delays()):
            if attempt:
                log.info("%s: retry %d/%d in %.1f s after %s", tag, attempt, config.attempts - 1, delay, reason)
                await asyncio.sleep(delay)
            try:
                async with self._slots:
                    self.requests_sent += 1
                    # The client's generic POST, not chat.completions.create: create() walks every message part
                    # (each frame's base64 string included) through its type annotations, ~7 ms per request,
                    # more than a core at the rates vLLM serves.
                    response = await self.client.post(
                        "/chat/completions",
                        cast_to=ChatCompletion,
                        body={"model": config.model, "messages": messages, **config.sampling},
                        options={"headers": {"X-Request-Id": f"{tag}/{attempt}"}},
                    )
                answer = clean_answer(response.choices[0].message.content)
                if answer:
                    return answer
                reason = "an empty answer"
            except openai.APIStatusError as error:
                if error.status_code < 500 and error.status_code not in RETRYABLE_STATUS:
                    raise FatalRequestError(f"{tag}: the server refused the request: {error}") from error
                reason = f"HTTP {error.status_code}"
            except openai.APITimeoutError:
                reason = f"no answer within {config.timeout_s} s"
            except openai.APIConnectionError as error:
                reason = f"connection failed ({error.__cause__ or error})"
            except (openai.APIResponseValidationError, ValueError, TypeError, AttributeError, IndexError) as error:
                reason = f"a malformed answer ({type(error).__name__})"
        raise RequestFailed(f"{reason} after {config.attempts} attempts")

    async def basic(self, clip_id: str, media: list[dict], frames_sha: str) -> str:
        """Stage 1: the rein, re-asked while too long, then truncated."""
        config, prompts = self.config, self.config.prompts
        prompt = prompts.stage1(config.max_words)
        key = request_hash(
            clip=clip_id,
            frames=frames_sha,
            prompt=prompt,
            reask=prompts.reask,
            **config.model_identity,
            max_words=config.max_words,
            reasks=config.reask,
            **config.sampling,
        )
        if cached := self.caches["basic"].get(key):
            return cached["text"]
        messages = [{"role": "user", "content": [*media, {"type": "text", "text": prompt}]}]
        answer = await self._complete(messages, f"semminer/basic/{clip_id}")
        answers = [answer]
        while count_words(answer) > config.max_words and len(answers) <= config.reask:
            messages += [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": prompts.reask_text(count_words(answer), config.max_words)},
            ]
            answer = await self._complete(messages, f"semminer/basic/{clip_id}")
            answers.append(answer)
        text = answer
        if count_words(answer) > config.max_words:
            text = truncate_words(answer, config.max_words)
            log.warning(
                "%s: the basic summary kept %d words after %d re-asks; truncated to %d: %r",
                clip_id,
                count_words(answer),
                config.reask,
                config.max_words,
                text,
            )
        await asyncio.to_thread(  # fsync off the event loop: slow storage must not stall other requests
            self.caches["basic"].put,
            {
                "key": key,
                "clip_id": clip_id,
                "level": "basic",
                "model": config.model,
                "frames": frames_sha,
                "text": text,
                "answers": answers,
            },
        )
        return text

    async def expand(self, clip_id: str, level: str, media: list[dict], frames_sha: str, basic: str) -> str:
        """Stage 2: one level's description, conditioned on the clip and its basic summary."""
        config = self.config
        prompt = config.prompts.stage2(level, basic)
        key = request_hash(clip=clip_id, frames=frames_sha, prompt=prompt, **config.model_identity, **config.sampling)
        if cached := self.caches["expand"].get(key):
            return cached["text"]
        messages = [{"role": "user", "content": [*media, {"type": "text", "text": prompt}]}]
        text = await self._complete(messages, f"semminer/{level}/{clip_id}")
        await asyncio.to_thread(
            self.caches["expand"].put,
            {"key": key, "clip_id": clip_id, "level": level, "model": config.model, "frames": frames_sha, "text": text},
        )
        return text

    async def caption_clip(self, clip_id: str, clip) -> dict[str, str]:
        """All four levels of one clip; clip: [T, H, W, 3] uint8."""
        frames = await asyncio.to_thread(prepare_frames, clip, self.config.frames)
        frames_sha = frames_hash(frames, self.config.frames)
        media = await asyncio.to_thread(media_parts, frames, self.config.frames)
        basic = await self.basic(clip_id, media, frames_sha)
        texts = await asyncio.gather(*(self.expand(clip_id, level, media, frames_sha, basic) for level in LEVELS))
        return {"basic": basic, **dict(zip(LEVELS, texts))}

    async def run(self, store: ClipStore) -> dict[str, dict[str, str]]:
        """-> level -> clip id -> text, for every clip of the store; raises SemMinerError listing failed clips."""
        await self.check_model()
        results: dict[str, dict[str, str]] = {level: {} for level in ("basic", *LEVELS)}
        failed: dict[str, str] = {}
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(store)):
            queue.put_nowait(index)
        progress = tqdm(total=len(store), desc=f"SemMiner ({self.config.model})", unit="clip", file=sys.stderr)

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                clip_id = store.clip_ids[index]
                try:
                    clip = await asyncio.to_thread(store.frames, index)
                    for level, text in (await self.caption_clip(clip_id, clip)).items():
                        results[level][clip_id] = text
                except RequestFailed as error:
                    failed[clip_id] = str(error)
                    log.error("%s: %s", clip_id, error)
                progress.update()

        try:
            async with asyncio.TaskGroup() as group:  # a FatalRequestError cancels every other worker
                for _ in range(min(self.config.in_flight, len(store))):
                    group.create_task(worker())
        except* FatalRequestError as errors:
            raise errors.exceptions[0] from None
        finally:
            progress.close()
        if failed:
            raise SemMinerError({c: failed[c] for c in store.clip_ids if c in failed})
        return results


async def _mine(clips: ClipStore, config: MinerConfig, cache_dir: Path) -> tuple[dict, int]:
    client = openai.AsyncOpenAI(
        base_url=config.base_url, api_key=api_key(config), timeout=config.timeout_s, max_retries=0
    )
    async with client:
        with AnswerCache(cache_dir / "basic.jsonl") as basic, AnswerCache(cache_dir / "expand.jsonl") as expand:
            log.info("cache %s: %d basic and %d stage-2 answers already there", cache_dir, len(basic), len(expand))
            miner = SemMiner(config, client, basic, expand)
            results = await miner.run(clips)
            return results, miner.requests_sent


def mine_captions(
    clip_files: list[str | Path], config: MinerConfig, cache_dir: str | Path
) -> dict[str, dict[str, str]]:
    """Caption every clip of the clip files: level (basic, anchor, motion, holistic) -> clip id -> text."""
    store = ClipStore(clip_files)
    try:
        results, sent = asyncio.run(_mine(store, config, Path(cache_dir)))
    finally:
        store.close()
    log.info("%d clips captioned with %d requests sent", len(store), sent)
    return results
