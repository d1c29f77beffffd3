"""Clip ids: `{movie}_{k}` names the k-th (1-based) clip of a movie, as CC2017-SE does (`seg3_17`, `test1_5`).
HCP movies are `{run}_{segment}`, so their ids read `MOVIE1_clip2_5`."""

from __future__ import annotations


def clip_id(movie: str, index: int) -> str:
    """Id of the clip at 0-based `index` of `movie`."""
    return f"{movie}_{index + 1}"


def parse_clip_id(clip: str) -> tuple[str, int]:
    """`seg3_17` -> ("seg3", 16): the movie and the clip's 0-based index in it."""
    movie, _, number = clip.rpartition("_")
    if not movie or not number.isdigit() or int(number) < 1:
        raise ValueError(f"{clip!r} is not a clip id of the form movie_k (k from 1)")
    return movie, int(number) - 1
