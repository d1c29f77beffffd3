"""SAD training throughput and peak memory: samples per second of full training steps (forward, SAD loss,
backward, AdamW) for the demo config and for a CC2017-sized model, with the parameter count.

    python benchmarks/sad_training.py [--device cpu|cuda] [--precision fp32|bf16] [--steps 10] [--threads 2]

demo: 3 subjects of ~1,100 voxels, 32 x 384 MiniLM targets, the schema's default SAD and batch (128).
cc2017: 3 subjects of 13,000 voxels, 77 x 768 CLIP targets, batch 32, and the model sizes of configs/cc2017.yaml.
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

CHILD = """
import json, resource, sys, time, torch
from semvideo_core.models.losses import SADLossWeights, sad_loss
from semvideo_core.models.sad import SAD, SADConfig
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
device = torch.device(spec["device"])
model = SAD(SADConfig(voxels={f"subject{k}": spec["voxels"] for k in (1, 2, 3)}, tokens=spec["tokens"],
                      dim=spec["dim"], **spec["model"])).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
batch = spec["batch"]
voxels = torch.randn(batch, spec["voxels"], device=device)
targets = torch.randn(batch, spec["tokens"], spec["dim"], device=device)
dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec["precision"])
autocast = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
def step():
    with autocast:
        loss, _ = sad_loss(model, voxels, "subject1", targets, SADLossWeights())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
for _ in range(2):
    step()
if device.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
for _ in range(spec["steps"]):
    step()
if device.type == "cuda":
    torch.cuda.synchronize()
seconds = time.perf_counter() - start
print(json.dumps({"samples_per_s": spec["steps"] * batch / seconds,
                  "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None}))
"""


def sizes() -> dict:
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())["properties"]["sad"]["properties"]
    demo_model = {k: v["default"] for k, v in schema["model"]["properties"].items()}
    cc2017 = yaml.safe_load((REPO / "configs" / "cc2017.yaml").read_text())["sad"]
    return {
        "demo": {
            "voxels": 1100,
            "tokens": 32,
            "dim": 384,
            "batch": schema["pretrain"]["default"]["batch_size"],
            "model": demo_model,
        },
        "cc2017": {"voxels": 13000, "tokens": 77, "dim": 768, "batch": 32, "model": {**demo_model, **cc2017["model"]}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}; device {args.device}, {args.precision}"
    )
    for name, spec in sizes().items():
        spec = {
            **spec,
            "device": args.device,
            "precision": args.precision,
            "steps": args.steps,
            "threads": args.threads,
        }
        out = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        cuda = f", CUDA peak {result['cuda_peak_mb']:.0f} MB" if result["cuda_peak_mb"] is not None else ""
        print(
            f"{name:<7} {result['params_m']:7.1f} M parameters, batch {spec['batch']:>3}: "
            f"{result['samples_per_s']:8.1f} samples/s, peak RSS {result['rss_mb']:.0f} MB{cuda}"
        )


if __name__ == "__main__":
    main()
