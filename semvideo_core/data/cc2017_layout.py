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

from ..io.clip_ids import clip_id as movie_clip_id

TRAILING_VOLUMES = 4
CC2017_PAGE = "https://purr.purdue.edu/publications/2809/1"


@dataclass(frozen=True)
class RunFiles:
    """The presentations of one movie: `paths[i]` is repetition `reps[i]` (1-based, as in the file names)."""

    name: str  # seg3, test1
    split: str  # train or test
    reps: tuple[int, ...]
    paths: tuple[Path, ...]


def trim_rule(entries: list[dict]) -> dict[int, tuple[int, int]]:
    """Config trimming entries [{volumes, drop_first, drop_last}] -> {volumes: (drop_first, drop_last)}."""
    return {int(e["volumes"]): (int(e["drop_first"]), int(e["drop_last"])) for e in entries}


def kept_volumes(trim: dict[int, tuple[int, int]]) -> int:
    """Volumes every run keeps after trimming (= clips per movie); the rule must keep the same number for all."""
    kept = {n - first - last for n, (first, last) in trim.items()}
    if len(kept) != 1 or min(kept) < 1:
        raise ValueError(f"every trimming rule must keep the same number of volumes (at least one), got {sorted(kept)}")
    return kept.pop()


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
    return movie_clip_id(run.name, clip_index)


def subject_runs(
    raw_dir: str | Path,
    subject: int,
    n_train: int,
    n_test: int,
    train_repeats: int,
    test_repeats: int,
    exclude: list[tuple[str, int]] = (),
) -> list[RunFiles]:
    """Every presentation of every movie for one subject, minus excluded (run name, repetition) pairs."""
    excluded = set(exclude)
    result = []
    for run in runs(n_train, n_test):
        n_reps = train_repeats if run.split == "train" else test_repeats
        reps = tuple(rep for rep in range(1, n_reps + 1) if (run.name, rep) not in excluded)
        paths = tuple(cifti_path(raw_dir, subject, run, rep) for rep in reps)
        result.append(RunFiles(run.name, run.split, reps, paths))
    return result


def raw_files(subjects: list[int], n_train: int, n_test: int, train_repeats: int, test_repeats: int) -> list[str]:
    """Every raw file the pipeline reads, relative to raw_dir: the stimuli, then each subject's CIFTI runs."""
    all_runs = runs(n_train, n_test)
    files = [str(stimulus_path("", run)) for run in all_runs]
    for subject in subjects:
        for run in all_runs:
            n_reps = train_repeats if run.split == "train" else test_repeats
            files += [str(cifti_path("", subject, run, rep)) for rep in range(1, n_reps + 1)]
    return files
