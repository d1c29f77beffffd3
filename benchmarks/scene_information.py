"""Where the scene is lost between the voxels and the frames on the demo world: the background kind and the colour and
shape of the largest object (the demo scene probe's labels) of one subject's test clips,

1. read from the voxels directly: a linear classifier (scikit-learn RidgeClassifierCV) from the subject's measured
   fMRI (presentations averaged, as every decoder sees it) and from the world's noise-free responses of the same
   voxels, trained on the training clips' labels at each clip's middle frame: what the fMRI carries;
2. read by the probe from anchor frames rendered by the demo's t2i UNet with the anchor tokens of each source below,
   from pure noise (diffusers' StableDiffusionPipeline over the anchor pipeline's parts: the tokens alone decide)
   and from the clip's first `full` motion frame at the configured strength (what the render does): what the
   generator takes from its tokens. Not img2img at strength 1: its first DDIM step is t = 901 of 1000, where the
   cosine schedule keeps 15 % of the init latents' amplitude, enough to pass the init's scene on.

The `truth` tokens are also rendered from the `oracle` motion frame (the true latents through the VAE): the
render's `oracle` anchor frames, its ceiling. `--guidance` overrides render.anchor.guidance (1: no classifier-free
guidance); `--samples PNG` writes the first 12 test clips' true first frames above their frames from noise with
the true tokens, without guidance and with it.

Token sources: `truth` (the test captions' embeddings), `noise-free ridge` (ridge from the world's noise-free
responses of the subject's voxels to the anchor embeddings: a linear decode without measurement noise),
`sad` (SAD's decodes, what `full` renders with), `ridge` (the ridge baseline's decodes) and `empty` (the empty
caption: the generator's prior).

    python benchmarks/scene_information.py [--subject subject1] [--threads 2] [--guidance G] [--samples PNG]

Reads the outputs of the default demo main job (run it first); renders with the schema's render.anchor settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from diffusers import StableDiffusionPipeline
from PIL import Image
from sklearn.linear_model import RidgeClassifierCV

from semvideo_core.backends.probe import accuracy, chance, classify_frames, load_probe
from semvideo_core.config import with_defaults
from semvideo_core.data.video import resize_frames
from semvideo_core.io.clip_arrays import read_clip_array
from semvideo_core.io.embeddings import load_constant, load_embeddings
from semvideo_core.models.ridge import fit_ridge, predict_ridge
from semvideo_core.pixels import to_uint8
from semvideo_core.render.anchor import anchor_pipeline, render_anchor_frames
from semvideo_core.world.labels import LABELS, clip_labels
from semvideo_core.world.responses import CEILING_ALPHAS, noise_free_fmri

REPO = Path(__file__).resolve().parents[1]


def rows_of(path, key: str, clip_ids: list[str]) -> torch.Tensor:
    embeds, ids = load_embeddings(path, key)
    index = {clip: i for i, clip in enumerate(ids)}
    return embeds[[index[clip] for clip in clip_ids]]


def text_to_image(
    pipe: StableDiffusionPipeline, tokens: torch.Tensor, empty: torch.Tensor, settings: dict, seeds: list[int]
) -> np.ndarray:
    """Frames uint8 [N, H, W, 3] from pure noise and the tokens [N, L, D] alone, with the anchor settings' steps,
    guidance and seeds (one generator per clip, as render_anchor_frames)."""
    out = pipe(
        prompt_embeds=tokens,
        negative_prompt_embeds=empty.expand(len(tokens), -1, -1),
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance"],
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        output_type="pt",
    ).images  # [N, 3, H, W] in [0, 1]
    return to_uint8(out.float() * 2 - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", default="subject1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--guidance", type=float, help="classifier-free guidance (default: render.anchor's)")
    parser.add_argument("--samples", type=Path, help="PNG of true first frames above frames from noise")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    settings = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()), schema)["render"]
    if args.guidance is not None:
        settings["anchor"]["guidance"] = args.guidance
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
    from_noise = StableDiffusionPipeline(**pipe.components)  # the same parts, text-to-image
    from_noise.set_progress_bar_config(disable=True)
    strength = settings["anchor"]["strength"]
    oracle_frames = read_clip_array("predictions/demo/oracle/truth/motion_frames.h5", "frames", test_ids)[0][:, 0]
    starts = {"from noise": None, f"from motion frame ({strength})": motion[:, 0]}
    base = chance(labels)
    print("anchor frames read by the probe (labels at each clip's first frame)")
    print(f"anchor guidance {settings['anchor']['guidance']}, {settings['anchor']['steps']} DDIM steps")
    print(f"{'tokens':<18} {'start':<28} " + " ".join(f"{name:>10}" for name in LABELS))
    print(f"{'chance':<18} {'-':<28} " + " ".join(f"{base[name]:>10.3f}" for name in LABELS))
    batch, anchor = settings["batch_size"], settings["anchor"]
    for name, tokens in sources.items():
        runs = {**starts, f"from oracle frame ({strength})": oracle_frames} if name == "truth" else starts
        for start, init in runs.items():
            chunks = []
            for i in range(0, len(test_ids), batch):
                seeds = [anchor["seed"] + row for row in range(i, min(i + batch, len(test_ids)))]
                if init is None:
                    chunks.append(text_to_image(from_noise, tokens[i : i + batch], empty, anchor, seeds))
                else:
                    chunks.append(
                        render_anchor_frames(pipe, init[i : i + batch], tokens[i : i + batch], empty, anchor, seeds)
                    )
            frames = np.concatenate(chunks)
            read = accuracy(classify_frames(probe, frames), labels)
            print(f"{name:<18} {start:<28} " + " ".join(f"{read[k]:>10.3f}" for k in LABELS), flush=True)
    if args.samples:
        shown = test_ids[:12]
        seeds = [anchor["seed"] + row for row in range(len(shown))]
        rows = [
            text_to_image(from_noise, sources["truth"][: len(shown)], empty, {**anchor, "guidance": g}, seeds)
            for g in (1.0, anchor["guidance"])
        ]
        truth = resize_frames(read_clip_array(data / "clips" / "test.h5", "frames", shown)[0][:, 0], rows[0].shape[1])
        grid = np.concatenate([np.concatenate(list(row), axis=1) for row in [truth, *rows]])  # [3 * H, 12 * W, 3]
        Image.fromarray(grid).resize((2 * grid.shape[1], 2 * grid.shape[0]), Image.NEAREST).save(args.samples)
        print(
            f"{args.samples}: true first frames; from noise with the true tokens, guidance 1 and {anchor['guidance']}"
        )


if __name__ == "__main__":
    main()
