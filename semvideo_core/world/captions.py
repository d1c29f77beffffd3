"""Exact captions of demo-world clips at the four SemMiner levels, derived from the scene parameters.

- basic: a summary of at most 20 words (SemMiner's "rein");
- anchor: the static content of the clip's first frame;
- motion: what moves and how, and any scene cut;
- holistic: a global summary of the clip.
"""

from __future__ import annotations

from .scenes import SLOW_SPEED, Scene, SceneObject

LEVELS = ("basic", "anchor", "motion", "holistic")
BASIC_MAX_WORDS = 20

_SHORT_VERBS = {
    "left": "moves left",
    "right": "moves right",
    "up": "moves up",
    "down": "moves down",
    "rotate": "spins",
    "grow": "grows",
    "shrink": "shrinks",
    "bounce": "bounces",
}


def _name(obj: SceneObject) -> str:
    return f"{obj.colour} {obj.shape}"


def _position(x: float, y: float) -> str:
    horizontal = "left" if x < 0.38 else "right" if x > 0.62 else "centre"
    vertical = "upper" if y < 0.38 else "lower" if y > 0.62 else "middle"
    if horizontal == "centre" and vertical == "middle":
        return "in the centre"
    if vertical == "middle":
        return f"on the {horizontal}"
    if horizontal == "centre":
        return "at the top" if vertical == "upper" else "at the bottom"
    return f"in the {vertical} {horizontal}"


def _background(scene: Scene) -> str:
    first, second = scene.colours
    if scene.background == "flat":
        return f"a plain {first} background"
    if scene.background == "gradient":
        return f"a background fading from {first} to {second}"
    return f"a {first} and {second} {scene.background} background"


def _motion_phrase(obj: SceneObject) -> str:
    if obj.motion in ("left", "right", "up", "down"):
        pace = "slowly" if obj.speed < SLOW_SPEED else "quickly"
        verb = "slides" if obj.motion in ("left", "right") else "rises" if obj.motion == "up" else "sinks"
        where = f"to the {obj.motion}" if obj.motion in ("left", "right") else ""
        return " ".join(w for w in (verb, pace, where) if w)
    if obj.motion == "rotate":
        return "spins clockwise" if obj.speed > 0 else "spins counter-clockwise"
    if obj.motion == "grow":
        return "grows larger"
    if obj.motion == "shrink":
        return "shrinks"
    return "bounces up and down"


def _join(parts: list[str], word: str = "and") -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} {word} {parts[-1]}"


def _objects_at(scene: Scene, t_local: float) -> list[str]:
    parts = []
    for obj in scene.objects:
        x, y, _, _ = obj.state([t_local], scene.duration)
        parts.append(f"a {obj.size} {_name(obj)} {_position(float(x[0]), float(y[0]))}")
    return parts


def _shot_motion(scene: Scene) -> str:
    return _join([f"the {_name(o)} {_motion_phrase(o)}" for o in scene.objects], "while")


def _basic_shot(scene: Scene, with_background: bool = True) -> str:
    text = _join([f"a {_name(o)} {_SHORT_VERBS[o.motion]}" for o in scene.objects])
    return f"{text} on {scene.colours[0]}" if with_background else text


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:]


def basic_caption(shots: list[Scene]) -> str:
    """At most BASIC_MAX_WORDS words; the longest form that fits is used."""
    first = shots[0]
    candidates = [f"{_basic_shot(first, with_background=False)} on a {first.colours[0]} background"]
    if len(shots) > 1:
        candidates = [
            f"{_basic_shot(first)}, then a cut to {_basic_shot(shots[1])}",
            f"{_basic_shot(first)}, then a cut to {_basic_shot(shots[1], with_background=False)}",
            f"{_basic_shot(first)}, then the scene cuts",
            f"{_basic_shot(first, with_background=False)}, then the scene cuts",
        ]
    for text in candidates:
        if len(text.split()) <= BASIC_MAX_WORDS:
            return _capitalise(text) + "."
    raise AssertionError("the scene grammar produced no basic caption within the word limit")


def clip_captions(shots: list[Scene], clip_start: float, clip_seconds: float) -> dict[str, str]:
    """Captions at every level for the clip `[clip_start, clip_start + clip_seconds)` showing `shots` in order."""
    first = shots[0]
    anchor = f"The first frame shows {_join(_objects_at(first, clip_start - first.start))}, on {_background(first)}."
    motion = _capitalise(_shot_motion(first)) + "."
    for shot in shots[1:]:
        offset = shot.start - clip_start
        motion += (
            f" After {offset:g} second{'s' if offset != 1 else ''} the scene cuts to a new shot in which "
            f"{_shot_motion(shot)}."
        )
    n_objects = sum(len(s.objects) for s in shots)
    moving = [o.motion for s in shots for o in s.objects]
    pace = "busy" if n_objects > 2 or len(shots) > 1 else "calm" if n_objects == 1 else "lively"
    summary = _join(
        [f"{_join([f'a {o.size} {_name(o)}' for o in s.objects])} on {_background(s)}" for s in shots],
        "followed by",
    )
    holistic = (
        f"A {clip_seconds:g}-second animated clip {'with a scene cut ' if len(shots) > 1 else ''}showing {summary}. "
        f"{_capitalise(_join(sorted(set(_motion_word(m) for m in moving))))} dominate{'s' if len(set(moving)) == 1 else ''} "
        f"the {pace} scene."
    )
    return {"basic": basic_caption(shots), "anchor": anchor, "motion": motion, "holistic": holistic}


def _motion_word(motion: str) -> str:
    if motion in ("left", "right", "up", "down"):
        return "straight-line movement"
    return {"rotate": "spinning", "grow": "growth", "shrink": "shrinking", "bounce": "bouncing"}[motion]
