"""SAD on the demo world: test-set retrieval per caption level, beside the ridge baseline, chance and a noise
ceiling from the world's ground truth.

    python benchmarks/sad_retrieval.py [--workdir .] [--levels anchor motion holistic] [--cores 2]

Runs the workflow up to results/demo/semantic_retrieval.csv with the default config (the demo world, MiniLM
targets, the schema's SAD defaults), then prints, per level, the mean over subjects of the top-1 retrieval among all
test clips (identical captions count as one candidate) for SAD (refined, and its MLP's output) and ridge, chance,
and the noise ceiling: ridge fit
on the world's noise-free voxel responses (same voxels, same clips), the best a linear read-out of these voxels
could reach without measurement noise.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from semvideo_core.world.ceiling import noise_free_ceiling

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    args = parser.parse_args()
    target = "results/demo/semantic_retrieval.csv"
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(args.workdir)]
    subprocess.run([*command, "--cores", str(args.cores), target], check=True)
    with open(args.workdir / target) as handle:
        rows = list(csv.DictReader(handle))
    scores = defaultdict(list)
    for row in rows:
        scores[(row["variant"], row["level"])].append(float(row["top1"]))
        scores[("chance", row["level"])].append(float(row["chance"]))
    levels = sorted({row["level"] for row in rows}, key=["anchor", "motion", "holistic"].index)
    subjects = sorted({row["subject"] for row in rows})
    ceiling = {level: noise_free_ceiling(args.workdir, level, subjects) for level in levels}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; demo world, {len(subjects)} subjects")
    print("top-1 retrieval among all test clips, mean over subjects; SAD = Refineformer output, SAD-MLP = its MLP's")
    print(f"{'level':<10} {'SAD':>7} {'SAD-MLP':>8} {'ridge':>7} {'chance':>7} {'ceiling':>8}")
    for level in levels:
        mean = lambda key: sum(scores[(key, level)]) / len(scores[(key, level)])  # noqa: E731
        print(
            f"{level:<10} {mean('sad'):>7.3f} {mean('sad_mlp'):>8.3f} {mean('ridge'):>7.3f} {mean('chance'):>7.3f} "
            f"{ceiling[level]:>8.3f}"
        )


if __name__ == "__main__":
    main()
