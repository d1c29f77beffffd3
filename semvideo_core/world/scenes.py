"""The scene grammar of the demo world: shots of 1-2 moving shapes on a background, cut every few seconds.

Coordinates are fractions of the frame, x to the right and y downwards, as in image arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon")
ROTATION_INVISIBLE = frozenset({"circle", "ring"})  # spinning them changes no pixel

OBJECT_COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 235),
    "yellow": (240, 220, 40),
    "cyan": (40, 210, 220),
    "magenta": (210, 50, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
}
BACKGROUND_COLOURS = {
    "black": (15, 15, 15),
    "gray": (105, 105, 105),
    "navy": (20, 30, 95),
    "dark green": (20, 75, 35),
    "brown": (95, 55, 30),
    "purple": (75, 30, 95),
}
BACKGROUNDS = ("flat", "gradient", "checkered", "striped")
MOTIONS = ("left", "right", "up", "down", "rotate", "grow", "shrink", "bounce")
SIZES = {"small": 0.09, "medium": 0.13, "large": 0.17}  # radius, fraction of the frame

GROWTH = 0.8  # grow/shrink change the radius by this factor of itself over the shot
BOUNCE_HEIGHT = 0.25
BOUNCE_PERIOD = 1.0  # seconds per bounce
SLOW_SPEED = 0.08  # frames widths per second below which a translation counts as slow


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    motion: str
    x: float  # centre at the start of the shot
    y: float
    speed: float  # frame widths per second (translations) or degrees per second (rotation, sign = direction)

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    def state(self, t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centre x, centre y, radius and angle (radians) at times `t` (seconds since the shot started)."""
        t = np.asarray(t, dtype=np.float32)
        x = np.full_like(t, self.x)
        y = np.full_like(t, self.y)
        radius = np.full_like(t, self.radius)
        angle = np.zeros_like(t)
        if self.motion == "left":
            x = self.x - self.speed * t
        elif self.motion == "right":
            x = self.x + self.speed * t
        elif self.motion == "up":
            y = self.y - self.speed * t
        elif self.motion == "down":
            y = self.y + self.speed * t
        elif self.motion == "rotate":
            angle = np.deg2rad(self.speed) * t
        elif self.motion == "grow":
            radius = self.radius * (1 + GROWTH * t / duration)
        elif self.motion == "shrink":
            radius = self.radius * (1 + GROWTH * (1 - t / duration))
        elif self.motion == "bounce":
            y = self.y - BOUNCE_HEIGHT * np.abs(np.sin(np.pi * t / BOUNCE_PERIOD))
        return x, y, radius, angle


@dataclass(frozen=True)
class Scene:
    """One shot: a background and its objects, from `start` (seconds into the movie) for `duration` seconds."""

    start: float
    duration: float
    background: str
    colours: tuple[str, str]  # background colours; the second is used by gradient, checkered and striped
    objects: tuple[SceneObject, ...]

    @property
    def end(self) -> float:
        return self.start + self.duration

    def to_dict(self) -> dict:
        return asdict(self)


def _sample_object(rng: np.random.Generator, duration: float, x_range: tuple[float, float], colour: str) -> SceneObject:
    shape = str(rng.choice(SHAPES))
    motions = [m for m in MOTIONS if not (m == "rotate" and shape in ROTATION_INVISIBLE)]
    motion = str(rng.choice(motions))
    size = str(rng.choice(list(SIZES)))
    radius = SIZES[size]
    reach = radius * (1 + GROWTH) if motion in ("grow", "shrink") else radius
    low, high = reach + 0.02, 1 - reach - 0.02
    x = float(rng.uniform(max(low, x_range[0]), min(high, x_range[1])))
    y = float(rng.uniform(low, high))
    speed = 0.0
    if motion in ("left", "right", "up", "down"):
        # Travel 30-60% of the frame over the shot, capped so that the object stays inside it.
        travel = min(float(rng.uniform(0.3, 0.6)), high - low)
        speed = travel / duration
        # Start far enough from the edge it moves towards.
        if motion == "left":
            x = float(rng.uniform(low + travel, high))
        elif motion == "right":
            x = float(rng.uniform(low, high - travel))
        elif motion == "up":
            y = float(rng.uniform(low + travel, high))
        else:
            y = float(rng.uniform(low, high - travel))
    elif motion == "rotate":
        speed = float(rng.uniform(60, 180) * rng.choice([-1, 1]))
    elif motion == "bounce":
        y = float(rng.uniform(max(low, BOUNCE_HEIGHT + reach + 0.02), high))
    return SceneObject(shape, colour, size, motion, x, y, speed)


def sample_scene(rng: np.random.Generator, start: float, duration: float, max_objects: int) -> Scene:
    background = str(rng.choice(BACKGROUNDS))
    bg_names = list(BACKGROUND_COLOURS)
    first, second = rng.choice(len(bg_names), size=2, replace=False)
    n_objects = int(rng.integers(1, max_objects + 1))
    colours = rng.choice(list(OBJECT_COLOURS), size=n_objects, replace=False)
    # With two objects, the first starts in the left half and the second in the right half.
    lanes = [(0.0, 1.0)] if n_objects == 1 else [(0.0, 0.5), (0.5, 1.0)] + [(0.0, 1.0)] * (n_objects - 2)
    objects = tuple(_sample_object(rng, duration, lanes[i], str(colours[i])) for i in range(n_objects))
    return Scene(start, duration, background, (bg_names[first], bg_names[second]), objects)


def sample_movie(
    rng: np.random.Generator, seconds: float, scene_seconds: tuple[int, int], max_objects: int
) -> list[Scene]:
    """Shots that tile `[0, seconds)`, each lasting a whole number of seconds in `scene_seconds` (the last one cut short)."""
    scenes, start = [], 0.0
    while start < seconds:
        duration = float(min(rng.integers(scene_seconds[0], scene_seconds[1] + 1), seconds - start))
        scenes.append(sample_scene(rng, start, duration, max_objects))
        start += duration
    return scenes


def scenes_in(scenes: list[Scene], t0: float, t1: float) -> list[Scene]:
    """The shots that are visible in `[t0, t1)`, in order."""
    return [s for s in scenes if s.start < t1 and s.end > t0]


def scene_index_at(scenes: list[Scene], times: np.ndarray) -> np.ndarray:
    """Index of the shot on screen at each time."""
    starts = np.array([s.start for s in scenes])
    return np.searchsorted(starts, times, side="right") - 1
