"""SemMiner's prompts ("rein-then-expand") and the word limit of the rein.

Stage 1 asks for a basic summary of a clip in at most `max_words` words: the rein that keeps stage 2 from
hallucinating. Stage 2 asks, for each level, a description conditioned on the clip and that summary:
anchor (the static content of the first frame), motion (actions and transitions) and holistic (a global summary).
The paper's own prompts are not public; these defaults are ours. Templates are `str.format` strings with the
fields {max_words} (stage 1 and the re-ask) and {basic} (stage 2).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

LEVELS = ("anchor", "motion", "holistic")

DEFAULT_PROMPTS = {
    "basic": (
        "The images are frames of a two-second video clip, in order. Summarise what the clip shows in one "
        "sentence of at most {max_words} words: the main subjects, the setting and what happens. Describe only "
        "what is visible; do not guess. Answer with the sentence alone."
    ),
    "anchor": (
        'The images are frames of a two-second video clip, in order. A basic summary of the clip is: "{basic}"\n'
        "Describe the first frame as a still image: the objects, their colours, shapes, sizes and positions, the "
        "background, the lighting and the camera view. Stay consistent with the summary and describe only what "
        "is visible. Answer in two or three sentences."
    ),
    "motion": (
        'The images are frames of a two-second video clip, in order. A basic summary of the clip is: "{basic}"\n'
        "Describe the motion in the clip: what moves, in which direction and how fast, actions and interactions, "
        "camera movement and any scene transition. Do not describe static appearance. Stay consistent with the "
        "summary. Answer in two or three sentences."
    ),
    "holistic": (
        'The images are frames of a two-second video clip, in order. A basic summary of the clip is: "{basic}"\n'
        "Give a global description of the whole clip: the scene, the subjects and their appearance, what happens "
        "from start to end, and the overall mood. Stay consistent with the summary. Answer in three or four "
        "sentences."
    ),
    "reask": "That answer has {words} words. Answer again with one sentence of at most {max_words} words.",
}

_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def truncate_words(text: str, max_words: int) -> str:
    """The first `max_words` words of text, with its spacing kept and trailing punctuation trimmed."""
    words = list(_WORD.finditer(text))
    if len(words) <= max_words:
        return text.strip()
    return text[: words[max_words - 1].end()].rstrip(",;:-").strip()


def clean_answer(text: str | None) -> str:
    """An answer as stored: surrounding whitespace and quotes dropped, internal whitespace collapsed."""
    return " ".join((text or "").split()).strip().strip('"').strip()


@dataclass(frozen=True)
class Prompts:
    basic: str = DEFAULT_PROMPTS["basic"]
    anchor: str = DEFAULT_PROMPTS["anchor"]
    motion: str = DEFAULT_PROMPTS["motion"]
    holistic: str = DEFAULT_PROMPTS["holistic"]
    reask: str = DEFAULT_PROMPTS["reask"]

    @classmethod
    def from_dict(cls, settings: dict | None) -> "Prompts":
        """Config templates; missing or null entries keep the defaults. A template missing its field fails here."""
        prompts = cls(**{k: v for k, v in (settings or {}).items() if v is not None})
        for name, fields in (("basic", ("max_words",)), ("reask", ("words", "max_words"))) + tuple(
            (level, ("basic",)) for level in LEVELS
        ):
            template = getattr(prompts, name)
            for field in fields:
                if "{" + field + "}" not in template:
                    raise ValueError(f"prompt {name!r} must contain the field {{{field}}}")
        return prompts

    def stage1(self, max_words: int) -> str:
        return self.basic.format(max_words=max_words)

    def stage2(self, level: str, basic: str) -> str:
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        return getattr(self, level).format(basic=basic)

    def reask_text(self, words: int, max_words: int) -> str:
        return self.reask.format(words=words, max_words=max_words)


def request_hash(**fields) -> str:
    """A short, stable hash of what makes a request: the rendered prompt and the sampling settings."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
