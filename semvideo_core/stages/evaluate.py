"""Stage of rules/evaluate.smk: the paper's ten metrics per test clip of one reconstruction (rule evaluate), and
what every reconstruction of a dataset shares: the judges' outputs on the ground-truth clips (rule judge_truth) and
the ground truth's Farnebäck flows (rule truth_flows, half of each evaluation's EPE work otherwise).

Both sides go through the same protocol first (`settings`, the config's evaluation section): the frames kept per
clip, the pixel metrics' resolution and, on request, the references' side-by-side GIF packing. Then:
- semantic: N-way-I (image judge on every frame) and N-way-V (video judge on the clip), 2- and 50-way, each as the
  references' 100-trial Monte Carlo (legacy numpy RNG, seeded) and as its closed-form expectation (`_expected`);
  VIFI (cosine of the video encoder's frame-averaged features);
- pixel: SSIM (lineage from config), PSNR (identical frames 100), Hue-PCC;
- spatiotemporal: CLIP-PCC (adjacent-frame cosine of the image tower's features, 0 where VIFI <= the gate, or the
  NEURONS all-pairs variant), EPE (Farneback flow at `epe_size`);
- on the demo, the scene probe's per-clip accuracy on the reconstruction against the world's labels.
"""

from __future__ import annotations

import csv
import logging
import sys

import h5py
import numpy as np
from tqdm import tqdm

from ..backends.judges import load_judge
from ..backends.probe import classify_frames, load_probe
from ..io.atomic import atomic_output
from ..io.clip_arrays import read_clip_array
from ..metrics import consistency, flow, nway, packing, pixel
from ..world.labels import LABELS, clip_labels

log = logging.getLogger(__name__)
PROTOCOL = ("frames", "size")  # the settings the ground truth's judging depends on
FLOW_KEYS = (*PROTOCOL, "epe_size", "epe_bgr_quirk")  # and those its flows depend on
FLOW_CHUNK = 32  # clips of flows in memory at once: 32 x 5 pairs x 2 MiB = 320 MiB at 512²


def prepare(clips: np.ndarray, settings: dict, side: int | None = None) -> np.ndarray:
    """The protocol's frames of uint8 clips [N, T, H, W, 3]: `frames` kept per clip, resized to `size` (null: to
    `side`, the ground truth's)."""
    if settings["frames"]:
        clips = packing.select_frames(clips, settings["frames"])
    size = settings["size"] or side
    if size and clips.shape[2:4] != (size, size):
        clips = packing.resize_clips(clips, size)
    return clips


def load_judges(settings: dict, frames: int) -> dict:
    """Every judge slot's model; slots with the same backend and path share one. `settings`: {models: {slot:
    {backend, path}}, demo_folder, batch_size, device, dtype, and where a slot uses the backend that reads them,
    stand_in_size and vifi_bgr_quirk: config.judge_runtime}; `frames`: the evaluated clip length (the video judges are
    built for it)."""
    read_by_one_backend = {key: settings[key] for key in ("stand_in_size", "vifi_bgr_quirk") if key in settings}
    judges, loaded = {}, {}
    for slot, entry in settings["models"].items():
        key = (entry["backend"], entry["path"])
        if key not in loaded:
            loaded[key] = load_judge(
                slot,
                entry,
                settings["device"],
                settings["dtype"],
                frames,
                settings["demo_folder"],
                **read_by_one_backend,
            )
            loaded[key].batch_size = settings["batch_size"]
        judges[slot] = loaded[key]
    return judges


def _scores(classifier, encoder, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classifier logits, encoder features) of `inputs`, in one pass where one model serves both slots."""
    if classifier is encoder:
        return classifier.logits_and_features(inputs)
    return classifier.logits(inputs), encoder.features(inputs)


def judge_outputs(clips: np.ndarray, judges: dict) -> dict[str, np.ndarray]:
    """What the judges say of clips [N, T, H, W, 3]: image logits [N, T, C], video logits [N, C], VIFI features
    [N, T', D] and image-tower features [N, T, D]."""
    n, t = clips.shape[:2]
    frames = clips.reshape(n * t, *clips.shape[2:])
    image_logits, clip_features = _scores(judges["image_classifier"], judges["clip_image"], frames)
    video_logits, vifi_features = _scores(judges["video_classifier"], judges["vifi_clip"], clips)
    return {
        "image_logits": image_logits.reshape(n, t, -1),
        "video_logits": video_logits,
        "vifi_features": vifi_features,
        "clip_features": clip_features.reshape(n, t, -1),
    }


def judge_truth(clips_path, judge_settings: dict, protocol: dict, out_path) -> None:
    """Rule judge_truth: the judges' outputs on the protocol's ground-truth test clips, once per dataset.
    `protocol`: the evaluation section's frames and size."""
    clips, ids = read_clip_array(clips_path, "frames")
    clips = prepare(clips, protocol)
    outputs = judge_outputs(clips, load_judges(judge_settings, clips.shape[1]))
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as h5:
        h5["clip_id"] = np.array(ids, dtype=object)
        for name, array in outputs.items():
            h5[name] = array
        h5.attrs["protocol"] = _protocol_key(protocol)
    log.info("judged %d ground-truth clips -> %s", len(ids), out_path)


def truth_flows(clips_path, settings: dict, out_path, workers: int = 1) -> None:
    """Rule truth_flows: the protocol's ground-truth test clips' Farnebäck flows at `epe_size`, once per dataset,
    `flows` float32 [N, T-1, S, S, 2] (one chunk per clip) with `clip_id`. `settings`: the evaluation section's
    frames, size, epe_size and epe_bgr_quirk."""
    clips, ids = read_clip_array(clips_path, "frames")
    clips = prepare(clips, settings)
    size, pairs = settings["epe_size"], clips.shape[1] - 1
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as h5:
        h5["clip_id"] = np.array(ids, dtype=object)
        chunks = (1, pairs, size, size, 2) if ids else None  # HDF5 refuses chunks on an empty dataset
        flows = h5.create_dataset("flows", (len(ids), pairs, size, size, 2), np.float32, chunks=chunks)
        with tqdm(total=len(ids), desc="truth flows", unit="clip", file=sys.stderr) as bar:
            for start in range(0, len(ids), FLOW_CHUNK):
                part = slice(start, start + FLOW_CHUNK)
                flows[part] = flow.farneback_flows(clips[part], size, settings["epe_bgr_quirk"], workers)
                bar.update(len(clips[part]))
        h5.attrs["settings"] = _protocol_key(settings, FLOW_KEYS)
    log.info("flows of %d ground-truth clips at %d px -> %s", len(ids), size, out_path)


def _protocol_key(settings: dict, keys: tuple = PROTOCOL) -> str:
    return repr([(k, settings[k]) for k in keys])


def _read_judged(path, ids: list[str], settings: dict) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("protocol") != _protocol_key(settings):
            raise ValueError(f"{path}: judged under another protocol than {_protocol_key(settings)}; rerun judge_truth")
        rows = {c: i for i, c in enumerate(x.decode() if isinstance(x, bytes) else str(x) for x in h5["clip_id"][()])}
        missing = [c for c in ids if c not in rows]
        if missing:
            raise ValueError(f"{path}: {len(missing)} reconstructed clips were not judged (first: {missing[0]})")
        index = [rows[c] for c in ids]
        return {name: h5[name][()][index] for name in h5 if name != "clip_id"}


def _n_way(recon: np.ndarray, truth: np.ndarray, settings: dict, level: str) -> dict[str, np.ndarray]:
    """Per-clip N-way columns of `level` from logits ([N, T, C] image, [N, C] video). Image rows are visited frame
    index by frame index, each over all clips, as the references loop."""
    framewise = recon.ndim == 3
    flat_recon = recon.transpose(1, 0, 2).reshape(-1, recon.shape[-1]) if framewise else recon
    flat_truth = truth.transpose(1, 0, 2).reshape(-1, truth.shape[-1]) if framewise else truth
    columns = {}
    suffix = "I" if level == "image" else "V"
    for n in settings["n_way"]:
        if n - 1 > flat_recon.shape[1] - 3:
            log.warning("%d-way-%s skipped: the %s judge has only %d classes", n, suffix, level, flat_recon.shape[1])
            continue
        sampled, _ = nway.n_way_monte_carlo(flat_recon, flat_truth, n, trials=settings["trials"], seed=settings["seed"])
        expected = nway.n_way_expected(flat_recon, flat_truth, n)
        for name, values in ((f"{n}way_{suffix}", sampled), (f"{n}way_{suffix}_expected", expected)):
            columns[name] = values.reshape(recon.shape[1], recon.shape[0]).mean(0) if framewise else values
        if len(recon) > 1:  # each clip against the other clips' truth (frame index by frame index): the judge's chance
            pairs = zip(recon.swapaxes(0, 1), truth.swapaxes(0, 1)) if framewise else [(recon, truth)]
            columns[f"{n}way_{suffix}_mismatched"] = np.mean([nway.n_way_mismatched(r, t, n) for r, t in pairs], 0)
    return columns


def _check_flows(flows_path, settings: dict) -> None:
    """Refuse truth flows stored under other settings than `settings` (before any judging is spent)."""
    try:
        with h5py.File(flows_path, "r") as h5:
            made_with = h5.attrs.get("settings")
    except OSError as error:
        raise ValueError(f"{flows_path}: not a readable flows file ({error}); rerun truth_flows") from error
    if made_with != _protocol_key(settings, FLOW_KEYS):
        raise ValueError(
            f"{flows_path}: flows made with {made_with}, not {_protocol_key(settings, FLOW_KEYS)}; rerun truth_flows"
        )


def _epe_from_cache(recon: np.ndarray, ids: list[str], flows_path, settings: dict, workers: int) -> np.ndarray:
    """[N] EPE of protocol-prepared recon clips (ids: their clip ids) against the truth flows of rule truth_flows,
    read in chunks."""
    scores = []
    for start in range(0, len(ids), FLOW_CHUNK):
        part = slice(start, start + FLOW_CHUNK)
        flows, _ = read_clip_array(flows_path, "flows", ids[part])
        scores.append(flow.epe_from_flows(recon[part], flows, settings["epe_bgr_quirk"], workers))
    return np.concatenate(scores)


def score_clips(
    recon: np.ndarray,
    truth: np.ndarray,
    recon_judged: dict,
    truth_judged: dict,
    settings: dict,
    workers: int = 1,
    *,
    ids: list[str] | None = None,
    flows_path=None,
    epe_recon: np.ndarray | None = None,
):
    """Per-clip metric columns {name: [N]} of protocol-prepared clips (ids: their clip ids) and their judges'
    outputs. EPE reads the truth's flows from `flows_path` (rule truth_flows) where given, else computes them; its
    reconstruction frames are `epe_recon` where given (the references' recons-only GIF), else `recon`."""
    columns = _n_way(recon_judged["image_logits"], truth_judged["image_logits"], settings, "image")
    columns |= _n_way(recon_judged["video_logits"], truth_judged["video_logits"], settings, "video")
    vifi = consistency.vifi_score(truth_judged["vifi_features"], recon_judged["vifi_features"])
    columns["vifi"] = vifi
    columns["ssim"] = pixel.ssim(recon, truth, lineage=settings["ssim"], workers=workers).mean(1)
    columns["psnr"] = pixel.psnr(recon, truth).mean(1)
    columns["hue_pcc"] = pixel.hue_pcc(recon, truth, bgr_quirk=settings["hue_bgr_quirk"]).mean(1)
    if settings["clip_pcc"] == "ma_adjacent_gated":
        columns["clip_pcc"] = consistency.clip_pcc(recon_judged["clip_features"], vifi, gate=settings["vifi_gate"])
    else:
        columns["clip_pcc"] = consistency.clip_pcc_all_pairs(recon_judged["clip_features"])
    if flows_path is None:
        moving = recon if epe_recon is None else epe_recon
        columns["epe"] = flow.epe(moving, truth, settings["epe_size"], settings["epe_bgr_quirk"], workers)
    elif ids is None or len(ids) != len(recon):
        raise ValueError(f"{flows_path}: stored truth flows need the clip id of each of the {len(recon)} clips")
    else:
        columns["epe"] = _epe_from_cache(recon, ids, flows_path, settings, workers)
    return columns


def evaluate(
    inputs: dict, judge_settings: dict, settings: dict, out_csv, labelling: dict | None = None, workers: int = 1
):
    """Rule evaluate: per-clip metrics of inputs["reconstruction"] (video.h5 or motion_frames.h5, frames
    [N, T, h, w, 3] with clip ids) against inputs["truth"] (the test clips; inputs["judged"]: their judged
    outputs; inputs["flows"], optional: their flows from rule truth_flows) -> `out_csv`, one row per clip. On the
    demo (inputs probe and ground_truth, `labelling`), the scene
    probe's per-clip accuracy on the reconstruction is added."""
    recon_path = inputs["reconstruction"]
    recon, ids = read_clip_array(recon_path, "frames")
    truth, _ = read_clip_array(inputs["truth"], "frames", ids)
    if recon.shape[1] != truth.shape[1] and not settings["frames"]:
        raise ValueError(
            f"{recon_path}: {recon.shape[1]} frames per clip against {truth.shape[1]} in {inputs['truth']}; set "
            "evaluation.frames to the clip length to compare"
        )
    truth_view = prepare(truth, settings)
    recon_view = prepare(recon, settings, side=truth_view.shape[2])
    judges = load_judges(judge_settings, recon_view.shape[1])
    if settings["reference_packing"]:
        if "flows" in inputs:
            raise ValueError(
                f"{inputs['flows']}: stored truth flows cannot serve reference_packing (the truth's GIF "
                "half differs per reconstruction)"
            )
        # EPE's reference reads the recon from its own recons-only GIF (a grid of one image has no padding)
        epe_recon = packing.recons_only_gif(recon_view, workers)
        truth_view, recon_view = packing.pack_like_references(truth_view, recon_view)
        # The GIF palette is shared, so the truth half differs per recon.
        truth_judged = judge_outputs(truth_view, judges)
    else:
        epe_recon = None
        truth_judged = _read_judged(inputs["judged"], ids, settings)
        if "flows" in inputs:
            _check_flows(inputs["flows"], settings)
    log.info("scoring %d clips of %s at %s", len(ids), recon_path, recon_view.shape[1:])
    recon_judged = judge_outputs(recon_view, judges)
    columns = score_clips(
        recon_view,
        truth_view,
        recon_judged,
        truth_judged,
        settings,
        workers,
        ids=ids,
        flows_path=inputs.get("flows"),
        epe_recon=epe_recon,
    )
    if "probe" in inputs:
        labels = clip_labels(inputs["ground_truth"], ids, **labelling)  # [N, T, 3] of the ground-truth frames
        predicted = classify_frames(load_probe(inputs["probe"]), recon)  # the probe reads frames as rendered
        for i, name in enumerate(LABELS):
            columns[f"probe_{name}"] = (predicted[..., i] == labels[..., i]).mean(1)
    names = list(columns)
    with atomic_output(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_id", *names])
        for row, clip in enumerate(ids):
            writer.writerow([clip, *(f"{float(columns[n][row]):.6g}" for n in names)])
    means = {n: round(float(np.nanmean(columns[n])), 4) for n in names}
    log.info("means over %d clips: %s -> %s", len(ids), means, out_csv)
    return means
