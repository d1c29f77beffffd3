"""Quality of MAD's motion frames on the demo world, per subject and mean, against the true test frames at the VAE's
size: SSIM, PSNR, pixel correlation (per frame, averaged) and the correlation across test clips between decoded
and true motion energy (mean absolute frame-to-frame change), with its p-value; for the mean over subjects, a
permutation p: the subjects' decodes scored against the same shuffles of the test clips' true motion energy (it keeps
the dependence between subjects, whose MADs share their pretraining; like pearsonr's, it treats clips as exchangeable,
which adjacent clips of one shot are not quite).

    python benchmarks/mad_quality.py [--cores 2] [--no-run] [snakemake args, e.g. --configfile my.yaml]

Rows: full, no_motion, ridge and oracle (decode_mad's variants); mean_frame: the mean training clip (frame by
frame) for every test clip; and noise_free_ridge (demo worlds only), ridge fit as the ridge variant but from the
world's noise-free responses of the same voxels (ground_truth.h5) to the latents, decoded by the same VAE: what
regressing the latents reaches without measurement noise; on a demo world also a ridge from the voxels (measured and
noise-free) to each clip's motion energy directly. Beside the pixel scores, latent r: the mean per-feature
correlation across test clips between predicted and true latents. Unless --no-run, the workflow first brings the
motion frames up to date. The demo VAE's held-out reconstruction scores (train_vae) are printed too. Checks: full
beats mean_frame and ridge on SSIM and pixel correlation, its motion-energy correlation is positive with p < 0.01
(for every subject, and for the mean), and the VAE reaches 26 dB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr

from semvideo_core.backends.vae import decode_latents, load_vae
from semvideo_core.data.video import resize_frames
from semvideo_core.io.clip_arrays import read_attrs, read_clip_array
from semvideo_core.metrics.pixel import motion_energy, pixel_correlation, psnr, ssim
from semvideo_core.metrics.regression import feature_correlation, mean_correlation_test
from semvideo_core.models.ridge import fit_ridge, predict_ridge
from semvideo_core.world.responses import CEILING_ALPHAS, noise_free_fmri

VARIANTS = ("full", "no_motion", "ridge", "oracle")
SUBJECTS = ("subject1", "subject2", "subject3")


def subjects(variant: str) -> tuple[str, ...]:
    """The oracle reads no fMRI: the workflow decodes it once, under `truth`."""
    return ("truth",) if variant == "oracle" else SUBJECTS


VAE_TARGET_DB = 26.0


def noise_free_ridge(root: Path, dataset: str, subject: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(test latents [N, T, C, h, w], their VAE decodes uint8 [N, T, H, W, 3], clip ids) of ridge fit from the
    world's noise-free responses of the subject's voxels to the training clips' latents: what a linear regression
    of the latents on these voxels reaches without measurement noise."""
    data = root / "data" / dataset
    train_x, test_x, fmri = noise_free_fmri(data / "raw" / "ground_truth.h5", data / "fmri" / f"{subject}.h5")
    latents, _ = read_clip_array(data / "latents" / "train.h5", "latents", fmri.train_ids)
    model, scaling = fit_ridge(train_x, latents.reshape(len(latents), -1).astype(np.float32), CEILING_ALPHAS)
    print(f"noise-free latent ridge, {subject}: alpha {model.alpha_:g}")
    predicted = predict_ridge(model, scaling, test_x).reshape(len(test_x), *latents.shape[1:]).astype(np.float32)
    vae = load_vae(root / "models" / dataset / "vae")
    flat = torch.from_numpy(predicted).flatten(0, 1)
    frames = np.concatenate([decode_latents(vae, flat[i : i + 96]) for i in range(0, len(flat), 96)])
    return predicted, frames.reshape(*predicted.shape[:2], *frames.shape[1:]), fmri.test_ids


def motion_energy_readout(root: Path, dataset: str, subject: str, energy: dict[str, float]) -> dict[str, tuple]:
    """{voxels: (r, p)}: the correlation across test clips between the true motion energy (`energy`, per clip id) and
    a ridge fit to it directly from the subject's voxels, measured (presentations averaged) and noise-free: what a
    linear read-out of motion energy itself reaches, the yardstick for a decoder's motion r."""
    data = root / "data" / dataset
    train_x, test_x, fmri = noise_free_fmri(data / "raw" / "ground_truth.h5", data / "fmri" / f"{subject}.h5")
    target = np.array([energy[clip] for clip in fmri.train_ids], np.float32)[:, None]
    truth = np.array([energy[clip] for clip in fmri.test_ids])
    readout = {}
    for voxels, (x_train, x_test) in {
        "measured": (fmri.train.mean(1), fmri.test),
        "noise-free": (train_x, test_x),
    }.items():
        model, scaling = fit_ridge(x_train, target, CEILING_ALPHAS + [1e5, 1e6])
        readout[voxels] = tuple(pearsonr(np.ravel(predict_ridge(model, scaling, x_test)), truth))
    return readout


def scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    energy_p, energy_t = motion_energy(predicted), motion_energy(truth)
    if np.ptp(energy_p) > 0:
        r, p = pearsonr(energy_p, energy_t)
    else:  # a constant prediction (the mean frame) has no motion to correlate
        r, p = float("nan"), float("nan")
    return {
        "ssim": float(ssim(predicted, truth).mean()),
        "psnr": float(psnr(predicted, truth).mean()),
        "pixcorr": float(np.nanmean(pixel_correlation(predicted, truth))),
        "motion_r": float(r),
        "motion_p": float(p),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--no-run", action="store_true", help="score the files already there")
    parser.add_argument("--dataset", default="demo")
    args, snakemake_args = parser.parse_known_args()
    root = Path(".")
    targets = [f"predictions/{args.dataset}/{v}/{s}/motion_frames.h5" for v in VARIANTS for s in subjects(v)]
    if not args.no_run:
        subprocess.run(["snakemake", "--cores", args.cores, *snakemake_args, *targets], check=True)

    size = read_attrs(root / f"data/{args.dataset}/latents/test.h5")["size"]
    truth_clips, test_ids = read_clip_array(root / f"data/{args.dataset}/clips/test.h5", "frames")
    truth = resize_frames(truth_clips, size)
    train_clips, train_ids = read_clip_array(root / f"data/{args.dataset}/clips/train.h5", "frames")
    train_clips = resize_frames(train_clips, size)
    mean_clip = train_clips.astype(np.float64).mean(0).round().astype(np.uint8)

    true_latents = torch.from_numpy(
        read_clip_array(root / f"data/{args.dataset}/latents/test.h5", "latents", test_ids)[0]
    )

    def latent_r(latents: np.ndarray) -> float:
        return feature_correlation(torch.from_numpy(np.asarray(latents, np.float32)), true_latents.float())

    rows = []
    for variant in VARIANTS:
        for subject in subjects(variant):
            folder = root / f"predictions/{args.dataset}/{variant}/{subject}"
            frames, _ = read_clip_array(folder / "motion_frames.h5", "frames", test_ids)
            latents, _ = read_clip_array(folder / "motion_latents.h5", "latents", test_ids)
            rows.append(
                {"variant": variant, "subject": subject, "latent_r": latent_r(latents), **scores(frames, truth)}
                | {"energy": motion_energy(frames)}
            )
    baseline = np.broadcast_to(mean_clip, truth.shape)  # the same for every subject
    rows.append({"variant": "mean_frame", "subject": "-", "latent_r": float("nan"), **scores(baseline, truth)})
    world_truth = (root / f"data/{args.dataset}/raw/ground_truth.h5").exists()  # a demo world
    for subject in SUBJECTS if world_truth else ():
        latents, frames, ids = noise_free_ridge(root, args.dataset, subject)
        if ids != test_ids:
            raise ValueError(f"{subject}: the fMRI file's test clips are not those of the clip file")
        rows.append(
            {"variant": "noise_free_ridge", "subject": subject, "latent_r": latent_r(latents), **scores(frames, truth)}
            | {"energy": motion_energy(frames)}
        )

    print(f"{len(test_ids)} test clips, frames at {size} x {size}")
    print(
        f"{'variant':<16} {'subject':<9} {'latent r':>8} {'SSIM':>6} {'PSNR':>6} {'PixCorr':>8} "
        f"{'motion r':>9} {'p':>9}"
    )
    means = {}
    for variant in (*VARIANTS, "mean_frame", *(["noise_free_ridge"] if world_truth else [])):
        group = [r for r in rows if r["variant"] == variant]
        for r in group:
            print(
                f"{variant:<16} {r['subject']:<9} {r['latent_r']:8.3f} {r['ssim']:6.3f} {r['psnr']:6.2f} "
                f"{r['pixcorr']:8.3f} {r['motion_r']:9.3f} {r['motion_p']:9.2g}"
            )
        keys = ("latent_r", "ssim", "psnr", "pixcorr", "motion_r")
        means[variant] = m = {k: float(np.mean([r[k] for r in group])) for k in keys}
        m["motion_p"] = float("nan")
        if "energy" in group[0] and all(np.ptp(r["energy"]) > 0 for r in group):
            m["motion_r"], m["motion_p"] = mean_correlation_test(
                np.stack([r["energy"] for r in group]), motion_energy(truth)
            )
        print(
            f"{variant:<16} {'mean':<9} {m['latent_r']:8.3f} {m['ssim']:6.3f} {m['psnr']:6.2f} {m['pixcorr']:8.3f} "
            f"{m['motion_r']:9.3f} {m['motion_p']:9.2g}"
        )

    if world_truth:
        energy = dict(zip(train_ids, motion_energy(train_clips))) | dict(zip(test_ids, motion_energy(truth)))
        print("motion energy read out directly (ridge from the voxels to each clip's motion energy), r (p):")
        for subject in SUBJECTS:
            readout = motion_energy_readout(root, args.dataset, subject, energy)
            print(f"  {subject}: " + ", ".join(f"{k} {r:.3f} ({p:.2g})" for k, (r, p) in readout.items()))
    else:
        print("not a demo world (no raw/ground_truth.h5): no noise-free rows")

    vae_record = root / f"models/{args.dataset}/vae/training.json"
    vae = json.loads(vae_record.read_text())["held_out"] if vae_record.exists() else None
    if vae:
        print(f"demo VAE, held-out frames: PSNR {vae['psnr']:.2f} dB, SSIM {vae['ssim']:.3f}")
    full_rows = [r for r in rows if r["variant"] == "full"]
    checks = {
        "full beats mean_frame on SSIM and PixCorr": means["full"]["ssim"] > means["mean_frame"]["ssim"]
        and means["full"]["pixcorr"] > means["mean_frame"]["pixcorr"],
        "full beats ridge on SSIM and PixCorr": means["full"]["ssim"] > means["ridge"]["ssim"]
        and means["full"]["pixcorr"] > means["ridge"]["pixcorr"],
        "full motion-energy r > 0 with p < 0.01 (every subject)": all(
            r["motion_r"] > 0 and r["motion_p"] < 0.01 for r in full_rows
        ),
        "full motion-energy r > 0 with p < 0.01 (mean over subjects, permutation)": means["full"]["motion_r"] > 0
        and means["full"]["motion_p"] < 0.01,
        f"VAE held-out PSNR >= {VAE_TARGET_DB:g} dB": bool(vae) and vae["psnr"] >= VAE_TARGET_DB,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(checks.values()) else 1)


if __name__ == "__main__":
    main()
