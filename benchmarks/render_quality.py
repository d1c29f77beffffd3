"""Scene-probe accuracy of CVR's anchor frames on the demo world: how often the demo scene probe (rule
train_probe) reads the background kind, and the colour and shape of the largest object, right in

- the ground-truth test frames (the probe's own accuracy: what it can tell at best),
- MAD's motion frames (full, ridge, oracle: the VAE's reconstruction of the true frames), first frame of each clip,
- the anchor frames of every render variant (full, no_anchor, ridge, oracle),

per subject and mean, with chance (the most common label). The probe judges each clip's first frame, the frame the
anchor caption describes.

    python benchmarks/render_quality.py [--cores 2] [--no-run] [snakemake args, e.g. --configfile my.yaml]

Checks: oracle anchor frames >= 0.8 background, >= 0.6 colour, >= 0.4 shape; full anchor frames above ridge and
at least as high as full's motion frames on colour and shape; the probe >= 0.95 / 0.95 / 0.8 on ground truth.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from semvideo_core.io.clip_arrays import read_clip_array
from semvideo_core.stages.probe import accuracy, chance, classify_frames, load_probe
from semvideo_core.world.labels import LABELS, clip_labels

RENDERS = ("full", "no_anchor", "ridge", "oracle")
MOTION = ("full", "ridge", "oracle")
SUBJECTS = ("subject1", "subject2", "subject3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="2")
    parser.add_argument("--no-run", action="store_true", help="score the files already there")
    args, snakemake_args = parser.parse_known_args()
    targets = ["models/demo/probe.safetensors"]
    targets += [f"videos/demo/{v}/{s}/anchor.h5" for v in RENDERS for s in SUBJECTS]
    if not args.no_run:
        subprocess.run(["snakemake", "--cores", args.cores, *snakemake_args, *targets], check=True)

    probe_path = Path("models/demo/probe.safetensors")
    probe, saved = load_probe(probe_path), json.loads(probe_path.with_suffix(".json").read_text())
    truth_frames, ids = read_clip_array("data/demo/clips/test.h5", "frames")
    labels = clip_labels("data/demo/raw/ground_truth.h5", ids, **saved["labelling"])[:, 0]  # [N, 3] first frames
    rows = [("ground truth", "-", accuracy(classify_frames(probe, truth_frames[:, 0]), labels))]
    for subject in SUBJECTS:
        for variant in MOTION:
            frames = read_clip_array(f"predictions/demo/{variant}/{subject}/motion_frames.h5", "frames", ids)[0]
            rows.append((f"motion {variant}", subject, accuracy(classify_frames(probe, frames[:, 0]), labels)))
        for variant in RENDERS:
            frames = read_clip_array(f"videos/demo/{variant}/{subject}/anchor.h5", "anchor", ids)[0]
            rows.append((f"anchor {variant}", subject, accuracy(classify_frames(probe, frames), labels)))

    base = chance(labels)
    print(f"{len(ids)} test clips, first frames; probe {probe_path} ({saved['probe']['size']} px)")
    print(f"{'frames':<17} {'subject':<9} " + " ".join(f"{name:>10}" for name in LABELS))
    print(f"{'chance':<17} {'-':<9} " + " ".join(f"{base[name]:>10.3f}" for name in LABELS))
    means = {}
    for name in dict.fromkeys(r[0] for r in rows):
        group = [r[2] for r in rows if r[0] == name]
        for row in (r for r in rows if r[0] == name and r[1] != "-"):
            print(f"{row[0]:<17} {row[1]:<9} " + " ".join(f"{row[2][k]:>10.3f}" for k in LABELS))
        means[name] = {k: float(np.mean([g[k] for g in group])) for k in LABELS}
        print(f"{name:<17} {'mean':<9} " + " ".join(f"{means[name][k]:>10.3f}" for k in LABELS))

    truth, oracle, full = means["ground truth"], means["anchor oracle"], means["anchor full"]
    ridge, motion = means["anchor ridge"], means["motion full"]
    checks = {
        "probe >= 0.95 / 0.95 / 0.8 on ground truth": truth["background"] >= 0.95
        and truth["colour"] >= 0.95
        and truth["shape"] >= 0.8,
        "oracle anchor >= 0.8 / 0.6 / 0.4": oracle["background"] >= 0.8
        and oracle["colour"] >= 0.6
        and oracle["shape"] >= 0.4,
        "full anchor above ridge on colour and shape": full["colour"] > ridge["colour"]
        and full["shape"] > ridge["shape"],
        "full anchor >= full motion frames on colour and shape": full["colour"] >= motion["colour"]
        and full["shape"] >= motion["shape"],
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
