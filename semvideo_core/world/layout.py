"""Where the demo world's files go and which runs it has: light enough to be read while the DAG is built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data import cc2017_layout as layout
from .config import WorldConfig

GROUND_TRUTH_FILE = "ground_truth.h5"
# Caption files, named as in the CC2017-SE release where it has the level (basic is ours).
CAPTION_FILES = {
    "basic": "basic_descriptions.csv",
    "anchor": "img_descriptions.csv",
    "motion": "motion_descriptions.csv",
    "holistic": "video_descriptions.csv",
}


@dataclass(frozen=True)
class WorldFiles:
    """Every file the generator writes, so callers (and the workflow) can list them before anything runs."""

    stimuli: list[Path]
    cifti: list[Path]
    captions: dict[str, Path]
    ground_truth: Path

    def all(self) -> list[Path]:
        return [*self.stimuli, *self.cifti, *self.captions.values(), self.ground_truth]


def world_runs(config: WorldConfig) -> list[layout.Run]:
    return layout.runs(config.train_segments, config.test_segments)


def repeats(config: WorldConfig, run: layout.Run) -> int:
    return config.train_repeats if run.split == "train" else config.test_repeats


def world_files(config: WorldConfig, out_dir: str | Path) -> WorldFiles:
    out_dir = Path(out_dir)
    runs = world_runs(config)
    return WorldFiles(
        stimuli=[layout.stimulus_path(out_dir, run) for run in runs],
        cifti=[
            layout.cifti_path(out_dir, subject, run, rep)
            for subject in range(1, config.n_subjects + 1)
            for run in runs
            for rep in range(1, repeats(config, run) + 1)
        ],
        captions={level: out_dir / "CC2017-SE" / name for level, name in CAPTION_FILES.items()},
        ground_truth=out_dir / GROUND_TRUTH_FILE,
    )


def n_volumes(config: WorldConfig, run: layout.Run) -> int:
    return run.leading_volumes + config.clips_per_segment + run.trailing_volumes
