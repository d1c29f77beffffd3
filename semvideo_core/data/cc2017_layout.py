"""The raw CC2017 layout (Wen et al. 2018, Purdue PURR 2809), as the released dataset lays it out.

    video_fmri_dataset/
      stimuli/seg{1..18}.mp4, test{1..5}.mp4                      30 fps movies, 8 min each
      subject{1,2,3}/fmri/{seg|test}{i}/cifti/{seg|test}{i}_{rep}_Atlas.dtseries.nii

Training segments are shown twice (rep 1, 2), test segments ten times. Runs carry extra volumes around the movie:
segments and test1 have 1 leading and 4 trailing volumes (245 in all), test2-5 have 2 leading and 4 trailing (246).
The demo world writes the same layout and the same leading/trailing convention, so the real readers run on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRAILING_VOLUMES = 4


@dataclass(frozen=True)
class Run:
    """One stimulus movie: a training segment (`seg3`) or a test movie (`test1`)."""

    split: str  # "train" or "test"
    index: int  # 1-based, as in the file names

    @property
    def name(self) -> str:
        return f"{'seg' if self.split == 'train' else 'test'}{self.index}"

    @property
    def leading_volumes(self) -> int:
        """Volumes acquired before the movie starts (the CC2017 trimming convention)."""
        return 2 if self.split == "test" and self.index >= 2 else 1

    @property
    def trailing_volumes(self) -> int:
        return TRAILING_VOLUMES


def runs(n_train: int, n_test: int) -> list[Run]:
    """All stimulus movies, training segments first."""
    return [Run("train", i) for i in range(1, n_train + 1)] + [Run("test", i) for i in range(1, n_test + 1)]


def stimulus_path(raw_dir: str | Path, run: Run) -> Path:
    return Path(raw_dir) / "stimuli" / f"{run.name}.mp4"


def cifti_path(raw_dir: str | Path, subject: int, run: Run, rep: int) -> Path:
    return Path(raw_dir) / f"subject{subject}" / "fmri" / run.name / "cifti" / f"{run.name}_{rep}_Atlas.dtseries.nii"


def clip_id(run: Run, clip_index: int) -> str:
    """Id of the 2-s clip `[2j, 2j+2)` of a movie; `clip_index` is 0-based, the id 1-based as in `seg3_17`."""
    return f"{run.name}_{clip_index + 1}"
