"""Why the demo's trainings off the generator chain book one thread: training steps per second of three demo
workloads (SAD pretraining, the scene probe, the t2i UNet; the schema's demo shapes and batches), run as one
process on two threads, one on one thread, and two one-thread processes side by side. On a two-core machine the
pair's summed throughput against the two-thread process is what one-thread booking gains (> 1) or loses (< 1).

    python benchmarks/thread_pairing.py [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

CHILD = """
import json, sys, time, torch
spec = json.loads(sys.argv[1])
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
if spec["workload"] == "sad":
    from semvideo_core.models.losses import SADLossWeights, sad_loss
    from semvideo_core.models.sad import SAD, SADConfig
    model = SAD(SADConfig(voxels={f"subject{k}": 1100 for k in (1, 2, 3)}, tokens=32, dim=384))
    voxels, targets = torch.randn(128, 1100), torch.randn(128, 32, 384)
    loss = lambda: sad_loss(model, voxels, "subject1", targets, SADLossWeights())[0]
elif spec["workload"] == "probe":
    from semvideo_core.models.probe import ProbeConfig, SceneProbe
    model = SceneProbe(ProbeConfig())
    pixels = torch.randn(64, 3, 128, 128)
    loss = lambda: sum(logits.float().pow(2).mean() for logits in model(pixels, dense=True).values())
else:
    from semvideo_core.backends.generators import build_tiny_unet
    unet = {"block_out_channels": [16, 32, 64], "layers_per_block": 1, "cross_attention_levels": 1,
            "norm_num_groups": 8, "attention_head_dim": 16}
    model = build_tiny_unet(unet, 4, 32, 384)
    x, tokens, t = torch.randn(32, 4, 32, 32), torch.randn(32, 32, 384), torch.randint(0, 1000, (32,))
    loss = lambda: model(x, t, encoder_hidden_states=tokens).sample.pow(2).mean()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
def step():
    optimizer.zero_grad(set_to_none=True)
    loss().backward()
    optimizer.step()
for _ in range(3):
    step()
start = time.perf_counter()
for _ in range(spec["steps"]):
    step()
print(json.dumps({"steps_per_s": spec["steps"] / (time.perf_counter() - start)}))
"""

WORKLOADS = {
    "sad": "SAD pretraining (3 x 1,100 voxels -> 32 x 384, batch 128)",
    "probe": "scene probe (128 px, batch 64)",
    "t2i": "t2i UNet (4 x 32 x 32 latents, 32 x 384 tokens, batch 32)",
}


def run_together(workload: str, threads: list[int], steps: int) -> list[float]:
    """Start one process per entry of `threads` at once; -> each one's training steps per second."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps({"workload": workload, "threads": n, "steps": steps})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in threads
    ]
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit(f"{workload}: a benchmark process failed")
    return [json.loads(out.strip().splitlines()[-1])["steps_per_s"] for out in outputs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per process (after 3 warm-up)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; training steps per second")
    print(f"{'workload':<60} {'2 threads':>9} {'1 thread':>9} {'pair (1 + 1)':>16} {'pair / 2 threads':>17}")
    for workload, label in WORKLOADS.items():
        (two,) = run_together(workload, [2], args.steps)
        (one,) = run_together(workload, [1], args.steps)
        pair = run_together(workload, [1, 1], args.steps)
        print(
            f"{label:<60} {two:9.2f} {one:9.2f} {pair[0]:7.2f} + {pair[1]:<6.2f} {sum(pair) / two:17.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
