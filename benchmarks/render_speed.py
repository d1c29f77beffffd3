"""Seconds per clip of CVR's rendering: the anchor frame (img2img) and the video (AnimateDiff + SparseCtrl with the
blurry-video initialisation), each with classifier-free guidance.

    python benchmarks/render_speed.py --size demo [--threads 2] [--device cpu|cuda] [--dtype float32|float16]
    python benchmarks/render_speed.py --size real [--steps 1] ...

demo: the demo's trained generators in models/demo (run the workflow first) at the schema's render settings,
      batches of render.batch_size clips, the default number of steps.
real: parts of the real architecture - SD-1.5's UNet2DConditionModel and AutoencoderKL, an AnimateDiff-v3-sized
      MotionAdapter, a SparseCtrl-RGB-sized SparseControlNetModel - with random weights (speed only), one clip at
      NeuroClips' shape (16 frames at 256 x 256, 77 x 768 prompt tokens). On a CPU it renders with --steps and with
      --steps + 1 denoising steps and extrapolates to 25 from their difference, the cost of one step (the VAE's
      encode and decode are paid once per clip, whatever the steps), said so in the output.
Peak memory is the process's max RSS (and torch's CUDA peak on a GPU).
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, SparseControlNetModel, UNet2DConditionModel

from semvideo_core.config import with_defaults
from semvideo_core.render.anchor import anchor_pipeline, render_anchor_frames
from semvideo_core.render.video import render_videos, video_pipeline

REPO = Path(__file__).resolve().parents[1]
FULL_STEPS = 25  # NeuroClips' DDIM steps, the real default


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _steps_time(time_with, settings: dict, extrapolate: bool) -> float:
    """Seconds of a render at `settings`; with `extrapolate`, at FULL_STEPS: the render at its steps plus
    (FULL_STEPS - steps) times one step's cost, the difference of the renders at steps + 1 and steps."""
    seconds = time_with(settings)
    if not extrapolate:
        return seconds
    per_step = time_with({**settings, "steps": settings["steps"] + 1}) - seconds
    if per_step <= 0:
        raise RuntimeError(f"one more step took {per_step:.1f} s: too noisy to extrapolate, run it again")
    print(f"  {per_step:.1f} s per denoising step, {seconds:.1f} s at {settings['steps']} steps", flush=True)
    return seconds + (FULL_STEPS - settings["steps"]) * per_step


def _real_parts(root: Path) -> None:
    """SD-1.5-shaped parts with random weights, saved as diffusers folders."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=32,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
    )
    unet.save_pretrained(root / "t2i" / "unet")
    DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1, clip_sample=False
    ).save_pretrained(root / "t2i" / "scheduler")
    AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        sample_size=256,
        scaling_factor=0.18215,
    ).save_pretrained(root / "vae")
    MotionAdapter(
        block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2, use_motion_mid_block=False
    ).save_pretrained(root / "adapter")
    SparseControlNetModel(use_simplified_condition_embedding=True, conditioning_channels=4).save_pretrained(
        root / "sparsectrl"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("demo", "real"), default="demo")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=1, help="real: steps actually run on a CPU")
    parser.add_argument("--root", default="/tmp/semvideo_render_speed", help="real: where the random parts go")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    config = with_defaults(yaml.safe_load((REPO / "config.yaml").read_text()), schema)
    render = config["render"]
    if args.size == "demo":
        parts = {
            "t2i": "models/demo/t2i",
            "adapter": "models/demo/motion_adapter",
            "sparsectrl": "models/demo/sparsectrl",
            "vae": "models/demo/vae",
        }
        size, tokens, dim, batch = config["latents"]["size"], config["embed"]["tokens"], 384, render["batch_size"]
        anchor_settings, video_settings = render["anchor"], render["video"]
    else:
        root = Path(args.root)
        if not (root / "sparsectrl").exists():
            _real_parts(root)
        parts = {k: root / k for k in ("t2i", "adapter", "sparsectrl", "vae")}
        size, tokens, dim, batch = 256, 77, 768, 1
        run_steps = FULL_STEPS if args.device.startswith("cuda") else args.steps
        anchor_settings = {"strength": 1.0, "steps": run_steps, "guidance": 7.5, "seed": 0}
        video_settings = {
            "frames": 16,
            "steps": run_steps,
            "guidance": 8.5,
            "init_strength": 1.0,
            "conditioning_scale": 1.0,
        }
    rng = np.random.default_rng(0)
    motion = rng.integers(0, 256, (batch, 6, size, size, 3), dtype=np.uint8)
    prompts, empty = torch.randn(batch, tokens, dim), torch.zeros(1, tokens, dim)
    extrapolate = args.size == "real" and anchor_settings["steps"] < FULL_STEPS
    anchor_pipe = anchor_pipeline(parts["t2i"], parts["vae"], args.device, args.dtype)
    # Warm-ups: one step at the timed shapes, so that first-call costs (oneDNN's kernels for each shape) stay out
    warm_up = {**anchor_settings, "steps": 1, "strength": 1.0}
    render_anchor_frames(anchor_pipe, motion[:, 0], prompts, empty, warm_up, list(range(batch)))

    def anchor_time(settings: dict) -> float:
        return _time(
            lambda: render_anchor_frames(anchor_pipe, motion[:, 0], prompts, empty, settings, list(range(batch)))
        )

    anchor_s = _steps_time(anchor_time, anchor_settings, extrapolate)
    anchors = motion[:, 0]
    anchor_pipe = None  # free it before the video parts load
    pipe = video_pipeline(parts["t2i"], parts["adapter"], parts["sparsectrl"], parts["vae"], args.device, args.dtype)
    warm_up = {**video_settings, "steps": 1, "init_strength": 1.0}
    if args.size == "real":
        warm_up["frames"] = 2  # 16 frames at 256² would cost minutes more on a CPU
    render_videos(pipe, motion, anchors, prompts, empty, warm_up, list(range(batch)))

    def video_time(settings: dict) -> float:
        return _time(lambda: render_videos(pipe, motion, anchors, prompts, empty, settings, list(range(batch))))

    video_s = _steps_time(video_time, video_settings, extrapolate)
    steps_note = (
        f" (ran {video_settings['steps']} and {video_settings['steps'] + 1} of {FULL_STEPS} steps; the difference,"
        f" one step, x {FULL_STEPS - video_settings['steps']} extrapolated)"
        if extrapolate
        else ""
    )
    memory = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cuda = f", CUDA peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GB" if torch.cuda.is_available() else ""
    print(
        f"{args.size}: {platform.processor() or platform.machine()}, {args.threads} threads, {args.device}"
        f" {str(pipe.unet.dtype).removeprefix('torch.')} (asked: {args.dtype}; half precision runs on CUDA only)"
    )
    print(f"  anchor frame: {anchor_s / batch:.2f} s per clip{steps_note}")
    print(f"  video ({video_settings['frames']} frames at {size} px): {video_s / batch:.2f} s per clip{steps_note}")
    print(f"  peak RSS {memory:.0f} MB{cuda}")


if __name__ == "__main__":
    main()
