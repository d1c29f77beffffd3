"""Scene-probe accuracy of CVR's renders on the demo world: how often the demo scene probe (rule train_probe) reads
the background kind, and the colour and shape of the largest object, right in

- the ground-truth test frames (the probe's own accuracy: what it can tell at best),
- MAD's motion frames (full, ridge, oracle: the VAE's reconstruction of the true frames), and those of the
  noise-free latent ridge (mad_quality.py: ridge from the world's noise-free responses to the latents, what
  regressing the latents reaches without measurement noise),
- the anchor frames (judged against each clip's first frame) and the videos (each evaluation frame against the
  true frame at its time) of every render variant,

per subject and mean, with chance (always answering the most common label).

    python benchmarks/render_quality.py [--cores 2] [--no-run] [snakemake args, e.g. --configfile my.yaml]

Unless --no-run, the workflow first brings the renders and the probe up to date. Checks: the probe >= 0.95 / 0.95 /
0.8 on ground truth; oracle anchor frames >= 0.8 background, >= 0.6 colour, >= 0.4 shape; full videos above ridge's
and at least as high as full's motion frames on colour and shape.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from mad_quality import noise_free_ridge  # benchmarks/, beside this script

from semvideo_core.backends.probe import accuracy, chance, classify_frames, load_probe
from semvideo_core.io.clip_arrays import read_attrs, read_clip_array
from semvideo_core.world.labels import LABELS, clip_labels

RENDERS = ("full", "no_anchor", "no_holi", "no_motion", "ridge", "oracle")
ANCHORS = ("full", "no_anchor", "no_motion", "ridge", "oracle")  # no_holi uses full's anchor frame
MOTION = ("full", "ridge", "oracle")
SUBJECTS = ("subject1", "subject2", "subject3")


def subjects(variant: str) -> tuple[str, ...]:
    """The oracle reads no fMRI: the workflow renders it once, under `truth`."""
    return ("truth",) if variant == "oracle" else SUBJECTS


def video_labels(labels: np.ndarray, attrs: dict) -> np.ndarray:
    """The true labels [N, F_eval, 3] of a video's evaluation frames: rendered frame k shows the interpolation of
    the clip's T frames at position k (T - 1) / (frames - 1); the nearest true frame's labels."""
    video = attrs["settings"]["video"]
    positions = np.linspace(0, labels.shape[1] - 1, video["frames"])[video["eval_start"] :: video["eval_step"]]
    return labels[:, np.round(positions).astype(int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--no-run", action="store_true", help="score the files already there")
    args, snakemake_args = parser.parse_known_args()
    targets = ["models/demo/probe.safetensors"] + [
        f"videos/demo/{v}/{s}/video.h5" for v in RENDERS for s in subjects(v)
    ]
    if not args.no_run:
        subprocess.run(["snakemake", "--cores", args.cores, *snakemake_args, *targets], check=True)

    probe_path = Path("models/demo/probe.safetensors")
    probe, saved = load_probe(probe_path), json.loads(probe_path.with_suffix(".json").read_text())
    truth_frames, ids = read_clip_array("data/demo/clips/test.h5", "frames")
    labels = clip_labels("data/demo/raw/ground_truth.h5", ids, **saved["labelling"])  # [N, T, 3]
    index = {clip: i for i, clip in enumerate(ids)}

    def score(frames: np.ndarray, clip_ids: list[str], truth: np.ndarray) -> dict:
        return accuracy(classify_frames(probe, frames), truth[[index[c] for c in clip_ids]])

    rows = [("ground truth", "-", accuracy(classify_frames(probe, truth_frames), labels))]
    for variant in MOTION:
        for subject in subjects(variant):
            frames, clip_ids = read_clip_array(f"predictions/demo/{variant}/{subject}/motion_frames.h5", "frames")
            rows.append((f"motion {variant}", subject, score(frames, clip_ids, labels)))
    for subject in SUBJECTS:
        _, frames, clip_ids = noise_free_ridge(Path("."), "demo", subject)
        rows.append(("motion nf-ridge", subject, score(frames, clip_ids, labels)))
    for variant in ANCHORS:
        for subject in subjects(variant):
            frames, clip_ids = read_clip_array(f"videos/demo/{variant}/{subject}/anchor.h5", "anchor")
            rows.append((f"anchor {variant}", subject, score(frames, clip_ids, labels[:, 0])))
    for variant in RENDERS:
        for subject in subjects(variant):
            path = f"videos/demo/{variant}/{subject}/video.h5"
            frames, clip_ids = read_clip_array(path, "frames")
            truth = video_labels(labels, read_attrs(path))
            rows.append((f"video {variant}", subject, score(frames, clip_ids, truth)))
            if variant == "full":  # on the clips the ablations render, to compare them with
                ablated = read_clip_array(f"videos/demo/no_holi/{subject}/video.h5", "frames")[1]
                rows.append(
                    ("video full (abl.)", subject, score(frames[: len(ablated)], clip_ids[: len(ablated)], truth))
                )

    base = chance(labels)
    print(f"{len(ids)} test clips (ablations: their first clips); probe {probe_path} at {saved['probe']['size']} px")
    print(f"{'frames':<18} {'subject':<9} " + " ".join(f"{name:>10}" for name in LABELS))
    print(f"{'chance':<18} {'-':<9} " + " ".join(f"{base[name]:>10.3f}" for name in LABELS))
    means = {}
    for name in dict.fromkeys(r[0] for r in rows):
        group = [r for r in rows if r[0] == name]
        for row in (r for r in group if r[1] != "-"):
            print(f"{row[0]:<18} {row[1]:<9} " + " ".join(f"{row[2][k]:>10.3f}" for k in LABELS))
        means[name] = {k: float(np.mean([r[2][k] for r in group])) for k in LABELS}
        print(f"{name:<18} {'mean':<9} " + " ".join(f"{means[name][k]:>10.3f}" for k in LABELS))

    truth, oracle = means["ground truth"], means["anchor oracle"]
    full, ridge, motion = means["video full"], means["video ridge"], means["motion full"]
    checks = {
        "probe >= 0.95 / 0.95 / 0.8 on ground truth": truth["background"] >= 0.95
        and truth["colour"] >= 0.95
        and truth["shape"] >= 0.8,
        "oracle anchor frames >= 0.8 / 0.6 / 0.4": oracle["background"] >= 0.8
        and oracle["colour"] >= 0.6
        and oracle["shape"] >= 0.4,
        "full videos above ridge's on colour and shape": full["colour"] > ridge["colour"]
        and full["shape"] > ridge["shape"],
        "full videos >= full motion frames on colour and shape": full["colour"] >= motion["colour"]
        and full["shape"] >= motion["shape"],
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
