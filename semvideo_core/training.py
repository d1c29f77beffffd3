"""One training loop for the decoders (SAD, MAD) and the demo VAE: AdamW, warm-up then cosine LR, gradient clipping,
autocast on GPU, seeds, a CSV log per epoch with validation metrics, and resumable checkpoints.

Determinism: the batches of epoch e come from a generator seeded with (seed, e), and the checkpoint holds the
weights, the optimizer and scheduler state, the torch RNG state and the position inside the epoch. A job killed
mid-training and rerun resumes from its last checkpoint and, on CPU, ends with the weights of an uninterrupted run.
Checkpoints are one safetensors file (tensors, plus the rest as JSON metadata), written atomically.

Identity: a checkpoint is resumed only by exactly the job that wrote it. Its fingerprint covers the starting weights
(a pretrained model's, or the seeded initialisation), the training settings, the caller's `identity` (a hash of the
data and stage settings) and the source code of the model, the loss and this loop. Once the job's outputs are saved
the checkpoint is deleted, so no later job can find a finished one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from .backends.precision import runs_half
from .config import without_checkpointing
from .io.atomic import atomic_output
from .io.clip_ids import parse_clip_id

log = logging.getLogger(__name__)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of all steps with a linear LR warm-up; cosine decay to 0 after it
    grad_clip: float = 1.0  # max gradient norm (0: off)
    checkpoint_every: int = 200  # steps; a checkpoint is also written at the end of every epoch
    seed: int = 0
    precision: str = "fp32"  # bf16 / fp16 autocast where the device is a GPU (backends.precision)
    device: str = "cpu"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {self.precision!r}")


class TrainingStopped(RuntimeError):
    """Training stopped on request (stop_after_steps) after writing its checkpoint."""


def lr_factor(step: int, total: int, warmup: float) -> float:
    warm = max(1, round(warmup * total))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def weights_hash(model: nn.Module) -> str:
    """sha256 of every tensor of the model's state (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{list(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def code_version(modules: Iterable[ModuleType]) -> str:
    """sha256 of the source files of `modules`: an edit to any of them is another training job."""
    digest = hashlib.sha256()
    for name, module in sorted({m.__name__: m for m in modules}.items()):
        digest.update(name.encode())
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _fingerprint(model: nn.Module, config: TrainConfig, extra: dict) -> str:
    # the checkpoint interval is not in it: a resume with another interval continues the same training
    train = without_checkpointing(asdict(config))
    blob = json.dumps({"start": weights_hash(model), "train": train, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, scaler, progress: dict, best=None) -> None:
    """`best`: the state dict of the best epoch so far (train's `select`), kept beside the current weights.
    `scaler`: fp16's gradient scaler, whose scale a resumed run must continue from (empty when disabled)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.cpu().contiguous() for k, v in (best or {}).items()})
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {
        "progress": json.dumps(progress),
        "param_groups": json.dumps(optim["param_groups"]),
        "scheduler": json.dumps(scheduler.state_dict()),
        "scaler": json.dumps(scaler.state_dict()),
    }
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, scaler) -> tuple[dict, dict | None]:
    """-> (progress, the best epoch's state dict or None)."""
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
        names = list(handle.keys())
        model.load_state_dict({n[6:]: handle.get_tensor(n) for n in names if n.startswith("model.")})
        best = {n[5:]: handle.get_tensor(n) for n in names if n.startswith("best.")} or None
        state: dict[int, dict] = {}
        for name in (n for n in names if n.startswith("optim.")):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = handle.get_tensor(name)
        optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        scheduler.load_state_dict(json.loads(meta["scheduler"]))
        if scaler_state := json.loads(meta["scaler"]):  # empty: precision is not fp16 here
            scaler.load_state_dict(scaler_state)
        torch.set_rng_state(handle.get_tensor("rng.torch"))
    return json.loads(meta["progress"]), best


def _selectable(score) -> bool:
    """A held-out score that can compete for the best epoch (a NaN would win or lose every comparison)."""
    return score is not None and not math.isnan(score)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, object], tuple[torch.Tensor, dict]],
    epoch_plan: Callable[[int, np.random.Generator], Sequence],
    config: TrainConfig,
    state_dir: str | Path,
    validate: Callable[[nn.Module], dict] | None = None,
    name: str = "train",
    stop_after_steps: int | None = None,
    identity: str = "",
    code: Iterable[ModuleType] = (),
    save: Callable[[nn.Module, Path], None] | None = None,
    select: str | None = None,
) -> Path:
    """Train `model` in place; -> the CSV log. `epoch_plan(epoch, rng)` lists the epoch's batches (anything
    `loss_fn(model, batch)` takes); `validate(model)` returns metrics for the log. State lives in `state_dir`
    (checkpoint.safetensors, log.csv). An existing checkpoint is resumed only if it was written by this job: the
    same starting weights, config, `identity` (a hash of the training data and settings) and source of the `code`
    modules (the loss, say; the model's module, the loss function's and this one are always included); any other
    is discarded. `save(model, log_path)` writes the job's outputs once training ends; the checkpoint is deleted
    after it returns. `select`: a metric of `validate` to maximise; training ends with the weights of the epoch
    where it was highest, the starting weights counting as epoch 0 (early stopping without stopping: the schedule
    stays that of all epochs).
    `stop_after_steps` stops with TrainingStopped after that many steps of this call, checkpoint written: an
    interruption at a known point, for tests."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, log_path = state_dir / "checkpoint.safetensors", state_dir / "log.csv"
    device = torch.device(config.device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(epoch_plan(0, np.random.default_rng([config.seed, 0])))
    total = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, config.warmup))
    modules = [*code, sys.modules[__name__], sys.modules[type(model).__module__]]
    if getattr(loss_fn, "__module__", None) in sys.modules:
        modules.append(sys.modules[loss_fn.__module__])
    fingerprint = _fingerprint(
        model,
        config,
        {"steps_per_epoch": steps_per_epoch, "identity": identity, "code": code_version(modules), "select": select},
    )
    progress = {"fingerprint": fingerprint, "step": 0, "epoch": 0, "in_epoch": 0, "sums": {}, "seconds": 0.0}
    best = None  # the state dict of the best epoch by `select`; progress["best"] holds its epoch and score
    log.info(
        "%s: %d epochs of %d steps on %s, a checkpoint every %d steps and epoch in %s",
        name,
        config.epochs,
        steps_per_epoch,
        device,
        config.checkpoint_every,
        state_dir,
    )
    half = PRECISIONS[config.precision] if runs_half(device) else None
    autocast = torch.autocast(device.type, dtype=half) if half else nullcontext()
    scaler = torch.amp.GradScaler(device.type, enabled=half is torch.float16)  # fp16 gradients underflow unscaled
    torch.manual_seed(config.seed)
    if checkpoint.exists():
        with safe_open(str(checkpoint), framework="pt") as handle:
            saved = json.loads(handle.metadata()["progress"])
        if saved.get("fingerprint") == fingerprint:
            progress, best = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
            log.info("%s: resuming at step %d (epoch %d)", name, progress["step"], progress["epoch"])
        else:
            log.warning("%s: %s is from another model or config; starting over", name, checkpoint)
            checkpoint.unlink()
            log_path.unlink(missing_ok=True)
    if progress["step"] == 0:
        log_path.unlink(missing_ok=True)
    elif log_path.exists():  # rows of epochs finished after the checkpoint (a kill between the two) are redone
        with open(log_path, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) <= progress["epoch"]]
        log_path.unlink()
        for row in rows:
            _append_row(log_path, row)
    if select is not None and validate is not None and progress["step"] == 0:  # the starting weights compete too
        model.eval()
        score = validate(model).get(select)
        if _selectable(score):
            best, progress["best"] = _snapshot(model), {"epoch": 0, "value": score}
            log.info("%s: starting weights, val_%s %.5f", name, select, score)
    steps_run = 0
    bar = tqdm(total=total, initial=progress["step"], desc=name, unit="step", file=sys.stderr)
    try:
        while progress["epoch"] < config.epochs:
            epoch = progress["epoch"]
            plan = epoch_plan(epoch, np.random.default_rng([config.seed, epoch]))
            started = time.perf_counter()
            model.train()
            for batch in plan[progress["in_epoch"] :]:
                with autocast:
                    loss, parts = loss_fn(model, batch)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                for key, value in {"loss": loss.item(), **parts}.items():
                    progress["sums"][key] = progress["sums"].get(key, 0.0) + value
                progress["step"] += 1
                progress["in_epoch"] += 1
                steps_run += 1
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                if progress["step"] % config.checkpoint_every == 0 or steps_run == stop_after_steps:
                    progress["seconds"] += time.perf_counter() - started
                    started = time.perf_counter()
                    save_checkpoint(checkpoint, model, optimizer, scheduler, scaler, progress, best)
                if steps_run == stop_after_steps:
                    raise TrainingStopped(f"{name}: stopped after {steps_run} steps, checkpoint written")
            progress["seconds"] += time.perf_counter() - started
            row = {"epoch": epoch + 1, "step": progress["step"], "lr": scheduler.get_last_lr()[0]}
            row.update({f"train_{k}": v / len(plan) for k, v in progress["sums"].items()})
            if validate is not None:
                model.eval()
                row.update({f"val_{k}": v for k, v in validate(model).items()})
            row["seconds"] = round(progress["seconds"], 3)
            _append_row(log_path, row)
            log.info("%s epoch %d: %s", name, epoch + 1, {k: round(v, 5) for k, v in row.items()})
            score = row.get(f"val_{select}") if select is not None else None
            if _selectable(score) and (best is None or score > progress["best"]["value"]):
                best, progress["best"] = _snapshot(model), {"epoch": epoch + 1, "value": score}
            progress.update(epoch=epoch + 1, in_epoch=0, sums={}, seconds=0.0)
            save_checkpoint(checkpoint, model, optimizer, scheduler, scaler, progress, best)
    finally:
        bar.close()
    if best is not None:
        model.load_state_dict(best)
        log.info(
            "%s: keeping epoch %d (val_%s %.5f)", name, progress["best"]["epoch"], select, progress["best"]["value"]
        )
    if save is not None:
        save(model, log_path)
    checkpoint.unlink(missing_ok=True)  # finished: nothing is left for another job to resume
    return log_path


def validation_split(n_clips: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of n_clips clips, a seeded `fraction` held out; both sorted."""
    order = np.random.default_rng([seed, 7]).permutation(n_clips)
    n_val = int(round(fraction * n_clips))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def block_validation_split(clip_ids: Sequence[str], fraction: float, seed: int, block: int):
    """(training rows, held-out rows) of `clip_ids`, holding out whole runs of `block` consecutive clips of a movie
    (seeded, about `fraction` of the clips, at least one run when `fraction` > 0); both sorted. A shot spans several
    2-s clips, so clips held out one by one share their shots with training neighbours and score what a model
    memorised; whole runs mostly do not."""
    runs: dict[tuple[str, int], list[int]] = {}
    for row, clip in enumerate(clip_ids):
        movie, index = parse_clip_id(clip)
        runs.setdefault((movie, index // block), []).append(row)
    keys = sorted(runs)
    order = np.random.default_rng([seed, 7]).permutation(len(keys))
    held_out, target = [], fraction * len(clip_ids)
    for k in order:
        # stop when one more run would overshoot by more than half of it, but hold out at least one if asked to
        if len(held_out) >= target - len(runs[keys[k]]) / 2 and (held_out or target == 0):
            break
        held_out += runs[keys[k]]
    held = np.zeros(len(clip_ids), bool)
    held[held_out] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def presentation_batches(reps: list[int], train_clips: np.ndarray, batch_size: int):
    """An epoch plan over single presentations of several subjects (subject s has reps[s] per clip): batches of
    one subject each, (subject index, clip rows, presentation rows), subjects interleaved in a seeded order."""

    def plan(epoch: int, rng: np.random.Generator):
        batches = []
        for s, n_reps in enumerate(reps):
            samples = np.stack(np.meshgrid(train_clips, np.arange(n_reps), indexing="ij"), -1).reshape(-1, 2)
            samples = samples[rng.permutation(len(samples))]
            batches += [
                (s, chunk[:, 0], chunk[:, 1]) for chunk in np.array_split(samples, max(1, len(samples) // batch_size))
            ]
        return [batches[i] for i in rng.permutation(len(batches))]

    return plan


def _append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
