"""The HCP 1200 release's 7T movie runs on S3: bucket, run names and key layout (light: read while the DAG is
built)."""

from __future__ import annotations

from collections.abc import Sequence

HCP_BUCKET = "hcp-openaccess"
# The 7T movie runs of the HCP 1200 release, as (run, phase-encoding direction). HCP_MOVIE_KEY builds a run's S3 key
# (its result folder and its 91k MSMAll-aligned, high-pass-filtered, FIX-cleaned dense time series) from one pair.
# These names are the release's, not the paper's: pass other `runs` / `key_template` to `hcp_movie_keys` to change them.
HCP_MOVIE_RUNS: tuple[tuple[str, str], ...] = (("MOVIE1", "AP"), ("MOVIE2", "PA"), ("MOVIE3", "PA"), ("MOVIE4", "AP"))
HCP_MOVIE_KEY = (
    "HCP_1200/{subject}/MNINonLinear/Results/tfMRI_{run}_7T_{direction}/"
    "tfMRI_{run}_7T_{direction}_Atlas_MSMAll_hp2000_clean.dtseries.nii"
)


def hcp_movie_keys(
    subject: str, runs: Sequence[tuple[str, str]] = HCP_MOVIE_RUNS, key_template: str = HCP_MOVIE_KEY
) -> list[str]:
    """The S3 keys (in HCP_BUCKET) of a subject's movie runs, in the order of `runs`."""
    return [key_template.format(subject=subject, run=run, direction=direction) for run, direction in runs]
