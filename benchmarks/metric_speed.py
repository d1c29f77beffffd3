"""Frames per second of the pixel metrics (semvideo_core.metrics) against a plain per-frame loop of the same library
calls, on CC2017-sized inputs: --clips clips of 6 frames at 256 x 256 (1,200 per subject and variant), and a check
that both give the same numbers.

    python benchmarks/metric_speed.py [--clips 1200] [--workers 2] [--metrics ssim,psnr,hue,epe256,epe512]
                                      [--chunk 50] [--opencv-threads N] [--evaluations 19]

Clips are smooth seeded random textures drifting a few pixels per frame (truth) and a blurred, noisy, slightly
differently moving copy (recon); a pool of distinct clips is tiled to --clips and scored in chunks of --chunk clips
(timings summed) so memory stays small. "cached truth" is how the workflow scores EPE: rule truth_flows computes the
truth's flows once per dataset (farneback_flows) and each of the dataset's --evaluations evaluate jobs (19 in the
default DAG) computes only its reconstruction's (epe_from_flows); its time per evaluation is the latter plus its
share of the former, against the plain loop that recomputes both sides. The last line adds the metrics up both
ways: every flow in every evaluation, and as the workflow runs them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from itertools import pairwise

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from semvideo_core.metrics import flow, pixel

FRAMES, SIZE, POOL = 6, 256, 24
METRICS = ("ssim", "psnr", "hue", "epe256", "epe512")


def synthetic_pool(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(truth, recon) uint8 [POOL, FRAMES, SIZE, SIZE, 3]: drifting smooth textures and degraded copies."""
    rng = np.random.default_rng(seed)
    truth = np.empty((POOL, FRAMES, SIZE, SIZE, 3), np.uint8)
    recon = np.empty_like(truth)
    for i in range(POOL):
        noise = rng.random((SIZE + 64, SIZE + 64, 3)).astype(np.float32)
        texture = cv2.GaussianBlur(noise, (0, 0), rng.uniform(2, 6))
        texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
        step = rng.integers(-4, 5, size=2)
        for t in range(FRAMES):
            y, x = 32 + step[0] * t, 32 + step[1] * t
            truth[i, t] = texture[y : y + SIZE, x : x + SIZE].astype(np.uint8)
            y2, x2 = 32 + (step[0] + 1) * t, 32 + step[1] * t
            blurred = cv2.GaussianBlur(texture[y2 : y2 + SIZE, x2 : x2 + SIZE], (0, 0), 1.5)
            recon[i, t] = np.clip(blurred + rng.normal(0, 10, blurred.shape), 0, 255).astype(np.uint8)
    return truth, recon


# -- plain loops: the reference scripts' way, one frame (or pair) at a time --------------------------------------


def loop_ssim(recon, truth):
    return np.array(
        [
            [structural_similarity(p, t, data_range=255, channel_axis=-1) for p, t in zip(r, g)]
            for r, g in zip(recon, truth)
        ]
    )


def loop_psnr(recon, truth):
    return np.array(
        [[peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(r, g)] for r, g in zip(recon, truth)]
    )


def loop_hue(recon, truth):
    def one(p, t):
        hp, ht = cv2.cvtColor(p, cv2.COLOR_BGR2HSV)[..., 0] / 360.0, cv2.cvtColor(t, cv2.COLOR_BGR2HSV)[..., 0] / 360.0
        return np.sum(hp * ht) / (np.sqrt(np.sum(hp**2)) * np.sqrt(np.sum(ht**2)))

    return np.array([[one(p, t) for p, t in zip(r, g)] for r, g in zip(recon, truth)])


def loop_epe(recon, truth, size):
    def flows(clip):
        frames = [f if f.shape[:2] == (size, size) else cv2.resize(f, (size, size)) for f in clip]
        gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        return [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in pairwise(gray)]

    out = []
    for r, g in zip(recon, truth):
        pairs = [
            np.sqrt(np.sum((ft - fr) ** 2, axis=2)).astype(np.float64).mean() for ft, fr in zip(flows(g), flows(r))
        ]
        out.append(np.mean(pairs))
    return np.array(out)


# -- ours ---------------------------------------------------------------------------------------------------------


def cases(workers: int) -> dict:
    """metric -> (plain loop, ours, [ours with cached truth or None], exact?)"""

    def cached(size):
        def run(recon, truth):
            """(scores, seconds for the truth's flows, seconds for the reconstruction's flows and the EPE)"""
            truth_flows, t_truth = _timed(flow.farneback_flows, truth, size, True, workers)
            scores, t_recon = _timed(flow.epe_from_flows, recon, truth_flows, True, workers)
            return scores, t_truth, t_recon

        return run

    return {
        "ssim": (loop_ssim, lambda r, t: pixel.ssim(r, t, workers=workers), None, True),
        "psnr": (loop_psnr, lambda r, t: pixel.psnr(r, t, workers=workers), None, True),
        "hue": (loop_hue, lambda r, t: pixel.hue_pcc(r, t, workers=workers), None, False),
        "epe256": (
            lambda r, t: loop_epe(r, t, 256),
            lambda r, t: flow.epe(r, t, 256, workers=workers),
            cached(256),
            False,
        ),
        "epe512": (
            lambda r, t: loop_epe(r, t, 512),
            lambda r, t: flow.epe(r, t, 512, workers=workers),
            cached(512),
            False,
        ),
    }


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--chunk", type=int, default=50, help="clips scored per call (bounds memory)")
    parser.add_argument("--metrics", default=",".join(METRICS))
    parser.add_argument(
        "--opencv-threads", type=int, default=None, help="cv2.setNumThreads for this run (default: OpenCV's own)"
    )
    parser.add_argument(
        "--evaluations", type=int, default=19, help="evaluate jobs sharing one truth's flows (the default DAG: 19)"
    )
    args = parser.parse_args()
    if args.opencv_threads is not None:
        cv2.setNumThreads(args.opencv_threads)
    chosen = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = set(chosen) - set(METRICS)
    if unknown:
        parser.error(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, OpenCV {cv2.__version__} with {cv2.getNumThreads()} "
        f"threads; {args.clips} clips x {FRAMES} frames at {SIZE}^2, workers={args.workers}, chunks of {args.chunk}"
    )
    truth_pool, recon_pool = synthetic_pool()
    frames_total = args.clips * FRAMES
    totals = [0.0, 0.0, 0.0]  # loop, ours recomputing every flow, ours as the workflow runs
    print(f"{'metric':<22} {'loop fps':>10} {'ours fps':>10} {'speed-up':>9}  numbers")
    for name in chosen:
        loop, ours, cached, exact = cases(args.workers)[name]
        t_loop = t_ours = t_cached = t_truth = 0.0
        worst = 0.0
        for start in range(0, args.clips, args.chunk):
            ids = np.arange(start, min(start + args.chunk, args.clips)) % POOL
            truth, recon = truth_pool[ids], recon_pool[ids]
            reference, dt = _timed(loop, recon, truth)
            t_loop += dt
            scores, dt = _timed(ours, recon, truth)
            t_ours += dt
            if exact:
                np.testing.assert_array_equal(scores, reference)
            else:
                np.testing.assert_allclose(scores, reference, rtol=1e-12)
            worst = max(worst, float(np.max(np.abs(scores - reference) / np.maximum(np.abs(reference), 1e-300))))
            if cached is not None:
                cached_scores, dt_truth, dt = cached(recon, truth)
                t_truth += dt_truth
                t_cached += dt
                np.testing.assert_array_equal(cached_scores, scores)
        same = "identical" if worst == 0 else f"max rel. diff {worst:.1e}"
        print(f"{name:<22} {frames_total / t_loop:10.1f} {frames_total / t_ours:10.1f} {t_loop / t_ours:8.2f}x  {same}")
        if cached is not None:
            t_cached += t_truth / args.evaluations
            print(
                f"{name + ' cached truth':<22} {'':>10} {frames_total / t_cached:10.1f} {t_loop / t_cached:8.2f}x  "
                f"(truth flows {t_truth:.1f} s once, / {args.evaluations} evaluations)"
            )
        totals[0] += t_loop
        totals[1] += t_ours
        totals[2] += t_cached if cached is not None else t_ours
    print(
        f"all chosen metrics: loop {totals[0]:.1f} s, ours {totals[1]:.1f} s ({totals[0] / totals[1]:.2f}x), "
        f"as the workflow runs them {totals[2]:.1f} s ({totals[0] / totals[2]:.2f}x)"
    )


if __name__ == "__main__":
    main()
