"""How much the anchor frame steers CVR's video on the demo world: the demo SparseCtrl's share of the render.

On the demo generators' held-out training clips (the split their per-epoch loss uses), rendered as the `oracle`
variant renders the test clips (the true latents through the VAE as motion frames, the true anchor tokens for the
anchor frame, the true holistic tokens for the video), each video is rendered three times with SparseCtrl given

- the clip's anchor frame (what the render does),
- a flat grey frame (no information),
- the clip's true first frame (the best anchor there could be).

Printed per SparseCtrl folder: the mean absolute difference, in grey levels per rendered frame, between the videos
from the anchor frame and from grey (0: the anchor changes nothing); how far each video's first frame lies from the
frame it was given and from the true first frame; and the scene probe's reading of first frames and of the
evaluation frames.

    python benchmarks/anchor_influence.py [--sparsectrl FOLDER ...] [--init-strength S] [--clips N] [--threads 2]

Reads the outputs of the default demo main job (run it first); renders with the schema's render settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from semvideo_core.backends.probe import accuracy, classify_frames, load_probe
from semvideo_core.backends.vae import decode_latents, load_vae
from semvideo_core.config import with_defaults
from semvideo_core.data.video import resize_frames
from semvideo_core.io.clip_arrays import read_clip_array
from semvideo_core.io.embeddings import load_constant, load_embeddings
from semvideo_core.render.anchor import anchor_pipeline, render_anchor_frames
from semvideo_core.render.video import render_videos, video_pipeline
from semvideo_core.training import validation_split
from semvideo_core.world.labels import LABELS, clip_labels

REPO = Path(__file__).resolve().parents[1]


def rows_of(path, clip_ids: list[str]) -> torch.Tensor:
    embeds, ids = load_embeddings(path)
    index = {clip: i for i, clip in enumerate(ids)}
    return embeds[[index[clip] for clip in clip_ids]]


def batched(render, n: int, batch: int) -> np.ndarray:
    """render(rows) for consecutive batches of rows 0..n-1, concatenated."""
    return np.concatenate([render(list(range(i, min(i + batch, n)))) for i in range(0, n, batch)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sparsectrl", nargs="+", default=["models/demo/sparsectrl"], help="SparseCtrl folders")
    parser.add_argument("--init-strength", type=float, help="render.video.init_strength override")
    parser.add_argument("--clips", type=int, help="the first N held-out clips (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    config = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()), schema)
    render, split = config["render"], config["sparsectrl"]
    video = dict(render["video"], **({"init_strength": args.init_strength} if args.init_strength else {}))

    latents, ids = read_clip_array("data/demo/latents/train.h5", "latents")
    held_out = validation_split(len(ids), split["val_fraction"], split["train"]["seed"])[1][: args.clips]
    clip_ids = [ids[i] for i in held_out]
    vae = load_vae("models/demo/vae")
    motion = np.stack([decode_latents(vae, torch.from_numpy(latents[i].astype(np.float32))) for i in held_out])
    truth_first = read_clip_array("data/demo/clips/train.h5", "frames", clip_ids)[0][:, 0]
    truth_first = resize_frames(truth_first, motion.shape[2])  # [N, H, W, 3]
    anchor_tokens, holistic = (rows_of(f"data/demo/embeds/{k}.safetensors", clip_ids) for k in ("anchor", "holistic"))
    empty_anchor, empty_holistic = (
        load_constant(f"data/demo/embeds/{k}.safetensors", "empty") for k in ("anchor", "holistic")
    )

    probe_path = Path("models/demo/probe.safetensors")
    probe, saved = load_probe(probe_path), json.loads(probe_path.with_suffix(".json").read_text())
    labels = clip_labels("data/demo/raw/ground_truth.h5", clip_ids, **saved["labelling"])  # [N, T, 3]
    evaluation = slice(video["eval_start"], None, video["eval_step"])
    positions = np.round(np.linspace(0, labels.shape[1] - 1, video["frames"])[evaluation]).astype(int)

    def read(frames: np.ndarray, truth: np.ndarray) -> str:
        scores = accuracy(classify_frames(probe, frames.reshape(-1, *frames.shape[-3:])), truth.reshape(-1, 3))
        return " / ".join(f"{scores[k]:.3f}" for k in LABELS)

    pipe, anchor = anchor_pipeline("models/demo/t2i", "models/demo/vae"), render["anchor"]
    pipe.set_progress_bar_config(disable=True)
    anchors = batched(
        lambda rows: render_anchor_frames(
            pipe, motion[rows, 0], anchor_tokens[rows], empty_anchor, anchor, [anchor["seed"] + r for r in rows]
        ),
        len(clip_ids),
        render["batch_size"],
    )
    conditions = {"anchor frame": anchors, "grey": np.full_like(anchors, 128), "true first frame": truth_first}
    print(
        f"{len(clip_ids)} held-out training clips; video: {video['frames']} frames, {video['steps']} DDIM steps at "
        f"init_strength {video['init_strength']}, guidance {video['guidance']}; probe reads background / colour / shape"
    )
    distance = np.abs(anchors - motion[:, 0].astype(float)).mean()
    print(f"anchor frames: probe {read(anchors, labels[:, 0])}; {distance:.2f} grey levels from the first motion frame")

    def render_all(pipe_video, condition: np.ndarray) -> np.ndarray:
        """Videos uint8 [N, frames, H, W, 3] of every clip, SparseCtrl given `condition` [N, H, W, 3]."""
        return batched(
            lambda rows: render_videos(
                pipe_video,
                motion[rows],
                condition[rows],
                holistic[rows],
                empty_holistic,
                video,
                [video["seed"] + r for r in rows],
            ),
            len(clip_ids),
            render["batch_size"],
        )

    for folder in args.sparsectrl:
        parts = ("models/demo/t2i", "models/demo/motion_adapter", folder, "models/demo/vae")
        pipe_video = video_pipeline(*parts, render["device"], render["dtype"])
        videos = {name: render_all(pipe_video, condition) for name, condition in conditions.items()}
        change = np.abs(videos["anchor frame"].astype(float) - videos["grey"]).mean(axis=(0, 2, 3, 4))
        print(f"{folder}: |video(anchor frame) - video(grey)| per frame, grey levels: {np.round(change, 2)}")
        for name, frames in videos.items():
            given, truth = (np.abs(frames[:, 0].astype(float) - c).mean() for c in (conditions[name], truth_first))
            print(
                f"  given {name:<16} first frame {given:5.2f} grey levels from it, {truth:5.2f} from the true first "
                f"frame; probe: first frames {read(frames[:, :1], labels[:, :1])}, "
                f"evaluation frames {read(frames[:, evaluation], labels[:, positions])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
