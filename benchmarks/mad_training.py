"""MAD training throughput and peak memory, and VAE encode / decode throughput.

    python benchmarks/mad_training.py [--device cpu|cuda] [--precision fp32|bf16] [--steps 5] [--threads 2]
                                      [--only mad|vae]

MAD: samples per second of full training steps (forward, MAD loss, backward, AdamW) for
  demo:   3 subjects of ~1,100 voxels, 6 x 4 x 32 x 32 latents, 32 x 384 MiniLM motion tokens, the schema's
          default MAD and batch (64);
  cc2017: 3 subjects of 13,000 voxels, 6 x 4 x 32 x 32 latents, 77 x 768 CLIP motion tokens, batch 32, the model
          sizes of configs/cc2017.yaml.
VAE: frames per second of encode (to the posterior mean) and decode, for
  demo:   the schema's demo AutoencoderKL at 64 x 64, batches of 64 frames (latents.batch_size);
  sd:     an AutoencoderKL with SD-1.5's VAE architecture at 256 x 256 (weights random: speed only), batches of
          8 frames on CPU, 64 on a GPU.
Each size runs in its own process, so peak memory (max RSS; on CUDA also torch's peak allocation) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

PRELUDE = """
import json, resource, sys, time, torch
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
device = torch.device(spec["device"])
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec["precision"])
def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()
def timed(fn, repeats):
    fn()  # warm-up
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats
def memory():
    return {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None}
"""

MAD_CHILD = (
    PRELUDE
    + """
from semvideo_core.models.losses import MADLossWeights, mad_loss
from semvideo_core.models.mad import MAD, MADConfig
model = MAD(MADConfig(voxels={f"subject{k}": spec["voxels"] for k in (1, 2, 3)}, frames=6, channels=4, height=32,
                      width=32, text_tokens=spec["tokens"], text_dim=spec["dim"], **spec["model"])).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
batch = spec["batch"]
voxels = torch.randn(batch, spec["voxels"], device=device)
motion = torch.randn(batch, spec["tokens"], spec["dim"], device=device)
targets = torch.randn(batch, 6, 4, 32, 32, device=device)
autocast = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
def step():
    with autocast:
        loss, _ = mad_loss(model(voxels, "subject1", motion), targets, model.latent_mean, MADLossWeights())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
seconds = timed(step, spec["steps"])
print(json.dumps({"samples_per_s": batch / seconds, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                  **memory()}))
"""
)

VAE_CHILD = (
    PRELUDE
    + """
from diffusers import AutoencoderKL
vae = AutoencoderKL(**spec["vae"]).to(device, dtype or torch.float32).eval()
n = spec["frames"]
frames = torch.rand(n, 3, spec["size"], spec["size"], device=device, dtype=dtype or torch.float32) * 2 - 1
with torch.inference_mode():
    latents = vae.encode(frames).latent_dist.mode()
    encode = timed(lambda: vae.encode(frames).latent_dist.mode(), spec["steps"])
    decode = timed(lambda: vae.decode(latents).sample, spec["steps"])
print(json.dumps({"encode_fps": n / encode, "decode_fps": n / decode, "latent": list(latents.shape[1:]),
                  "params_m": sum(p.numel() for p in vae.parameters()) / 1e6, **memory()}))
"""
)

SD_VAE = {  # the architecture of SD-1.5's vae/config.json
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
}


def defaults(section: dict) -> dict:
    return {k: v["default"] for k, v in section["properties"].items()}


def sizes() -> tuple[dict, dict]:
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())["properties"]
    mad, vae = schema["mad"]["properties"], schema["vae"]["properties"]
    demo_model = defaults(mad["model"])
    cc2017 = yaml.safe_load((REPO / "configs" / "cc2017.yaml").read_text())["mad"]
    mads = {
        "demo": {
            "voxels": 1100,
            "tokens": 32,
            "dim": 384,
            "batch": mad["pretrain"]["default"]["batch_size"],
            "model": demo_model,
        },
        "cc2017": {"voxels": 13000, "tokens": 77, "dim": 768, "batch": 32, "model": {**demo_model, **cc2017["model"]}},
    }
    demo_vae = defaults(vae["model"])
    levels = len(demo_vae["block_out_channels"])
    size = schema["latents"]["properties"]["size"]["default"]
    vaes = {
        "demo": {
            "size": size,
            "frames": 64,
            "vae": {
                **demo_vae,
                "down_block_types": ["DownEncoderBlock2D"] * levels,
                "up_block_types": ["UpDecoderBlock2D"] * levels,
                "mid_block_add_attention": False,
                "sample_size": size,
            },
        },
        "sd": {"size": 256, "frames": None, "vae": SD_VAE},
    }
    return mads, vaes


def run(child: str, spec: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", child, json.dumps(spec)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--only", choices=["mad", "vae"], help="run only the MAD or only the VAE sizes")
    args = parser.parse_args()
    common = {"device": args.device, "precision": args.precision, "steps": args.steps, "threads": args.threads}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}; "
        f"device {args.device}, {args.precision}"
    )
    mads, vaes = sizes()
    for name, spec in mads.items() if args.only != "vae" else ():
        result = run(MAD_CHILD, {**spec, **common})
        cuda = f", CUDA peak {result['cuda_peak_mb']:.0f} MB" if result["cuda_peak_mb"] is not None else ""
        print(
            f"MAD {name:<7} {result['params_m']:7.1f} M parameters, batch {spec['batch']:>3}: "
            f"{result['samples_per_s']:8.1f} samples/s, peak RSS {result['rss_mb']:.0f} MB{cuda}"
        )
    for name, spec in vaes.items() if args.only != "mad" else ():
        frames = spec["frames"] or (64 if args.device.startswith("cuda") else 8)
        result = run(VAE_CHILD, {**spec, **common, "frames": frames, "steps": max(1, args.steps // 2)})
        cuda = f", CUDA peak {result['cuda_peak_mb']:.0f} MB" if result["cuda_peak_mb"] is not None else ""
        print(
            f"VAE {name:<7} {spec['size']:>3} px -> latents {result['latent']}, {result['params_m']:.2f} M parameters: "
            f"encode {result['encode_fps']:8.1f} frames/s, decode {result['decode_fps']:8.1f} frames/s, "
            f"peak RSS {result['rss_mb']:.0f} MB{cuda}"
        )


if __name__ == "__main__":
    main()
