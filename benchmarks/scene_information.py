"""Where the scene is lost between the voxels and the frames on the demo world: the background kind and the colour and
shape of the largest object (the demo scene probe's labels) of one subject's test clips,

1. read from the voxels directly: a linear classifier (scikit-learn RidgeClassifierCV) from the subject's measured
   fMRI (presentations averaged, as every decoder sees it) and from the world's noise-free responses of the same
   voxels, trained on the training clips' labels at each clip's middle frame: what the fMRI carries;
2. read by the probe from anchor frames rendered by the demo's t2i UNet with the anchor tokens of each source below,
   from pure noise (strength 1: the tokens alone decide) and from the clip's first `full` motion frame at the
   configured strength (what the render does): what the generator takes from its tokens.

Token sources: `truth` (the test captions' embeddings), `noise-free ridge` (ridge from the world's noise-free
responses of the subject's voxels to the anchor embeddings: a linear decode without measurement noise),
`sad` (SAD's decodes, what `full` renders with), `ridge` (the ridge baseline's decodes) and `empty` (the empty
caption: the generator's prior).

    python benchmarks/scene_information.py [--subject subject1] [--threads 2]

Reads the outputs of the default demo main job (run it first); renders with the schema's render.anchor settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.linear_model import RidgeClassifierCV

from semvideo_core.config import with_defaults
from semvideo_core.io.clip_arrays import read_clip_array
from semvideo_core.io.embeddings import load_constant, load_embeddings
from semvideo_core.models.ridge import fit_ridge, predict_ridge
from semvideo_core.render.anchor import anchor_pipeline, render_anchor_frames
from semvideo_core.stages.probe import accuracy, chance, classify_frames, load_probe
from semvideo_core.world.labels import LABELS, clip_labels
from semvideo_core.world.responses import CEILING_ALPHAS, noise_free_fmri

REPO = Path(__file__).resolve().parents[1]


def rows_of(path, key: str, clip_ids: list[str]) -> torch.Tensor:
    embeds, ids = load_embeddings(path, key)
    index = {clip: i for i, clip in enumerate(ids)}
    return embeds[[index[clip] for clip in clip_ids]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="subject1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    settings = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()), schema)["render"]
    data = Path("data/demo")
    embeds_path = data / "embeds" / "anchor.safetensors"

    motion, test_ids = read_clip_array(f"predictions/demo/full/{args.subject}/motion_frames.h5", "frames")
    train_x, test_x, fmri = noise_free_fmri(data / "raw" / "ground_truth.h5", data / "fmri" / f"{args.subject}.h5")
    train_y = rows_of(embeds_path, "embeds", fmri.train_ids)
    model, scaling = fit_ridge(train_x, train_y.flatten(1).numpy(), CEILING_ALPHAS)
    test_rows = [fmri.test_ids.index(clip) for clip in test_ids]
    noise_free = torch.from_numpy(predict_ridge(model, scaling, test_x[test_rows])).float().view(-1, *train_y.shape[1:])
    empty = load_constant(embeds_path, "empty")
    sources = {
        "truth": rows_of(embeds_path, "embeds", test_ids),
        "noise-free ridge": noise_free,
        "sad": rows_of(f"predictions/demo/sad/{args.subject}/anchor.safetensors", "embeds", test_ids),
        "ridge": rows_of(f"predictions/demo/ridge/{args.subject}/anchor.safetensors", "embeds", test_ids),
        "empty": empty.expand(len(test_ids), -1, -1),
    }

    probe_path = Path("models/demo/probe.safetensors")
    probe, saved = load_probe(probe_path), json.loads(probe_path.with_suffix(".json").read_text())
    truth_path = data / "raw" / "ground_truth.h5"
    train_labels = clip_labels(truth_path, fmri.train_ids, **saved["labelling"])  # [N, T, 3]
    test_labels = clip_labels(truth_path, fmri.test_ids, **saved["labelling"])
    middle = train_labels.shape[1] // 2
    voxels = {"measured": (fmri.train.mean(1), fmri.test), "noise-free": (train_x, test_x)}
    print(f"{args.subject}, {len(test_ids)} test clips; read from the voxels (labels at each clip's middle frame)")
    print(f"{'voxels':<18} {'':<28} " + " ".join(f"{name:>10}" for name in LABELS))
    print(f"{'chance':<18} {'-':<28} " + " ".join(f"{chance(test_labels[:, middle])[k]:>10.3f}" for k in LABELS))
    for name, (x_train, x_test) in voxels.items():
        read = {}
        for k, label in enumerate(LABELS):
            classifier = RidgeClassifierCV(alphas=CEILING_ALPHAS).fit(x_train, train_labels[:, middle, k])
            read[label] = float((classifier.predict(x_test) == test_labels[:, middle, k]).mean())
        print(f"{name:<18} {'linear classifier':<28} " + " ".join(f"{read[k]:>10.3f}" for k in LABELS), flush=True)

    labels = clip_labels(truth_path, test_ids, **saved["labelling"])[:, 0]  # first frames, for the anchor frames
    pipe = anchor_pipeline("models/demo/t2i", "models/demo/vae")
    strengths = {"from noise": 1.0, f"from motion frame ({settings['anchor']['strength']})": None}
    base = chance(labels)
    print("anchor frames read by the probe (labels at each clip's first frame)")
    print(f"{'tokens':<18} {'start':<28} " + " ".join(f"{name:>10}" for name in LABELS))
    print(f"{'chance':<18} {'-':<28} " + " ".join(f"{base[name]:>10.3f}" for name in LABELS))
    batch = settings["batch_size"]
    for name, tokens in sources.items():
        for start, strength in strengths.items():
            anchor = {**settings["anchor"], "strength": strength or settings["anchor"]["strength"]}
            frames = np.concatenate(
                [
                    render_anchor_frames(
                        pipe,
                        motion[i : i + batch, 0],
                        tokens[i : i + batch],
                        empty,
                        anchor,
                        [anchor["seed"] + row for row in range(i, min(i + batch, len(test_ids)))],
                    )
                    for i in range(0, len(test_ids), batch)
                ]
            )
            read = accuracy(classify_frames(probe, frames), labels)
            print(f"{name:<18} {start:<28} " + " ".join(f"{read[k]:>10.3f}" for k in LABELS), flush=True)


if __name__ == "__main__":
    main()
