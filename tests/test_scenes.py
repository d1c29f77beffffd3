"""Scene grammar, rendering and stimulus features of the demo world."""

import numpy as np
import pytest

from semvideo_core.world.captions import BASIC_MAX_WORDS, clip_captions
from semvideo_core.world.features import group_sizes, luminance, pixel_features
from semvideo_core.world.render import render_scene
from semvideo_core.world.scenes import (
    BACKGROUNDS,
    MOTIONS,
    OBJECT_COLOURS,
    SHAPES,
    Scene,
    SceneObject,
    sample_movie,
    scenes_in,
)


@pytest.fixture(scope="module")
def movies():
    return [sample_movie(np.random.default_rng([7, i]), 80.0, (2, 8), 2) for i in range(20)]


def test_grammar_covers_shapes_colours_backgrounds_motions(movies):
    scenes = [s for movie in movies for s in movie]
    objects = [o for s in scenes for o in s.objects]
    assert len(SHAPES) >= 6 and len(OBJECT_COLOURS) >= 8 and len(BACKGROUNDS) >= 4 and len(MOTIONS) >= 6
    assert {o.shape for o in objects} == set(SHAPES)
    assert {o.colour for o in objects} == set(OBJECT_COLOURS)
    assert {s.background for s in scenes} == set(BACKGROUNDS)
    assert {o.motion for o in objects} == set(MOTIONS)
    assert {len(s.objects) for s in scenes} == {1, 2}
    for movie in movies:
        assert movie[0].start == 0 and movie[-1].end == 80.0
        assert all(a.end == b.start for a, b in zip(movie, movie[1:]))
        assert all(2 <= s.duration <= 8 for s in movie[:-1])


def test_objects_stay_inside_the_frame(movies):
    for scene in (s for movie in movies for s in movie):
        t = np.linspace(0, scene.duration, 50)
        for obj in scene.objects:
            x, y, radius, _ = obj.state(t, scene.duration)
            assert (x - radius >= 0).all() and (x + radius <= 1).all()
            assert (y - radius >= 0).all() and (y + radius <= 1).all()


def test_rendered_object_has_its_colour_at_its_centre():
    obj = SceneObject("square", "red", "large", "right", x=0.3, y=0.5, speed=0.1)
    scene = Scene(0.0, 2.0, "flat", ("black", "gray"), (obj,))
    frames = render_scene(scene, np.array([0.0, 1.0]), 64)
    assert tuple(frames[0, 32, int(0.3 * 64)]) == OBJECT_COLOURS["red"]
    assert tuple(frames[1, 32, int(0.4 * 64)]) == OBJECT_COLOURS["red"]  # moved right by 0.1 frame widths
    assert tuple(frames[0, 2, 2]) != OBJECT_COLOURS["red"]


@pytest.mark.parametrize("motion, direction", [("right", (1, 0)), ("left", (-1, 0)), ("down", (0, 1)), ("up", (0, -1))])
def test_motion_energy_is_direction_selective(motion, direction):
    obj = SceneObject("circle", "white", "large", motion, x=0.5, y=0.5, speed=0.1)
    scene = Scene(0.0, 2.0, "flat", ("black", "gray"), (obj,))
    frames = render_scene(scene, np.arange(10) / 30, 64)
    features = pixel_features(frames[1:], luminance(frames[:1])[0], grid=2)
    right, left, down, up = features[:, group_sizes(2)["colour"] :][:, :4].sum(axis=0)  # one coarse cell
    # Opponent energies: the aperture problem leaks energy into the orthogonal pair, but symmetrically.
    net = np.array([right - left, down - up])
    assert np.sign(net[np.argmax(np.abs(direction))]) == max(direction, key=abs)
    assert abs(net[np.argmax(np.abs(direction))]) > 10 * abs(net[np.argmin(np.abs(direction))])


def test_captions_describe_a_cut_and_keep_the_basic_limit():
    first = Scene(
        0.0, 3.0, "checkered", ("navy", "brown"), (SceneObject("star", "red", "small", "rotate", 0.3, 0.3, 90.0),)
    )
    second = Scene(
        3.0,
        4.0,
        "striped",
        ("black", "gray"),
        (
            SceneObject("hexagon", "magenta", "large", "left", 0.7, 0.5, 0.1),
            SceneObject("triangle", "yellow", "medium", "bounce", 0.3, 0.7, 0.0),
        ),
    )
    shots = scenes_in([first, second], 2.0, 4.0)
    captions = clip_captions(shots, 2.0, 2.0)
    assert len(captions["basic"].split()) <= BASIC_MAX_WORDS
    assert "red star" in captions["anchor"] and "magenta hexagon" not in captions["anchor"]
    assert "After 1 second the scene cuts" in captions["motion"] and "magenta hexagon slides" in captions["motion"]
    assert "spins clockwise" in captions["motion"]
    assert "scene cut" in captions["holistic"]
