"""SAD on the demo world: test-set retrieval per caption level, beside the ridge baseline, chance and a noise
ceiling from the world's ground truth.

    python benchmarks/sad_retrieval.py [--workdir .] [--levels anchor motion holistic] [--cores 2]

Runs the workflow up to results/demo/semantic_retrieval.csv with the default config (the demo world, MiniLM
targets, the schema's SAD defaults), then prints, per level, the mean over subjects of the top-1 retrieval among all
test clips (identical captions count as one candidate) for SAD (refined, and its MLP's output) and ridge, chance,
and the noise ceiling: ridge fit
on the world's noise-free voxel responses (same voxels, same clips), the best a linear read-out of these voxels
could reach without measurement noise. Then, per level, how close each decoder comes to the targets feature by
feature: the mean per-feature correlation across test clips and the variance-weighted R².
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

import numpy as np
import torch

from semvideo_core.io.embeddings import load_embeddings
from semvideo_core.metrics.retrieval import top1_accuracy
from semvideo_core.models.ridge import fit_ridge, predict_ridge
from semvideo_core.world.responses import CEILING_ALPHAS, noise_free_fmri

REPO = Path(__file__).resolve().parents[1]


def noise_free_ceiling(workdir: Path, level: str, subjects: list[str], dataset: str = "demo") -> float:
    """Mean over subjects of the top-1 test retrieval of ridge (alpha by cross-validation, as the baseline) fit
    on noise-free responses: the retrieval a linear read-out of these voxels reaches without noise."""
    embeds, ids = load_embeddings(workdir / "data" / dataset / "embeds" / f"{level}.safetensors")
    index = {c: i for i, c in enumerate(ids)}
    scores = []
    for subject in subjects:
        data = workdir / "data" / dataset
        train_x, test_x, fmri = noise_free_fmri(data / "raw" / "ground_truth.h5", data / "fmri" / f"{subject}.h5")
        train_y, test_y = embeds[[index[c] for c in fmri.train_ids]], embeds[[index[c] for c in fmri.test_ids]]
        model, scaling = fit_ridge(train_x, train_y.flatten(1).numpy(), CEILING_ALPHAS)
        predicted = torch.from_numpy(predict_ridge(model, scaling, test_x)).float().view(test_y.shape)
        scores.append(top1_accuracy(predicted, test_y))
    return float(np.mean(scores))


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
        for column in ("r", "r2"):
            scores[(row["variant"], row["level"], column)].append(float(row[column]))
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
    print("regression, mean over subjects: per-feature correlation across test clips r, and R² (< 0: farther from")
    print("the truth than the test clips' mean caption)")
    decoders = {"SAD": "sad", "MLP": "sad_mlp", "ridge": "ridge"}
    print(f"{'level':<10}" + "".join(f"{name + ' r':>9}{'R²':>8}" for name in decoders))
    for level in levels:
        cells = [scores[(variant, level, column)] for variant in decoders.values() for column in ("r", "r2")]
        print(f"{level:<10}" + "".join(f"{sum(c) / len(c):>{9 if i % 2 == 0 else 8}.3f}" for i, c in enumerate(cells)))


if __name__ == "__main__":
    main()
