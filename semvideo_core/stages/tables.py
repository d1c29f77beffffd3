"""Stage of rules/tables.smk: the evaluation's tables and figures from the per-clip CSVs of rule evaluate
(rule metrics_table).

- results/metrics.csv: a row per dataset, variant and subject, and their mean over subjects; a column per metric.
- results/metrics.md: the paper's table (its column order), our rows beside the paper's published ones (labelled)
  and a chance row; metrics computed with a stand-in judge are marked; N-way against the judges' own chance (each
  reconstruction scored against the other clips' ground truth); on the demo, the scene probe's table.
- results/figures/: a bar chart per metric across variants (error bars: s.e.m. over clips) and a frame grid of
  ground truth against each variant for sample clips.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import h5py
import matplotlib

matplotlib.use("Agg")  # files only: jobs run without a display
import matplotlib.pyplot as plt
import numpy as np

from ..backends.judges import STAND_INS
from ..io.atomic import atomic_output
from ..io.clip_arrays import read_clip_array
from ..metrics import nway
from ..metrics.packing import resize_clips

log = logging.getLogger(__name__)

# The paper's table: (column, label, which judge computes it, higher is better)
METRICS = (
    ("2way_I", "2-way-I", "image_classifier", True),
    ("50way_I", "50-way-I", "image_classifier", True),
    ("2way_V", "2-way-V", "video_classifier", True),
    ("50way_V", "50-way-V", "video_classifier", True),
    ("vifi", "VIFI", "vifi_clip", True),
    ("ssim", "SSIM", None, True),
    ("psnr", "PSNR", None, True),
    ("hue_pcc", "Hue-PCC", None, True),
    ("clip_pcc", "CLIP-PCC", "clip_image", True),
    ("epe", "EPE", None, False),
)
# Published CC2017 / HCP numbers (SemVideo's paper and project page; the peers' as SemVideo's table reports them).
PUBLISHED = (
    ("SemVideo (paper)", "cc2017", {"2way_I": 0.838, "2way_V": 0.865, "50way_V": 0.264, "vifi": 0.608, "ssim": 0.321,
                                    "hue_pcc": 0.849, "clip_pcc": 0.526, "epe": 4.788}),
    ("NeuroClips (in SemVideo's table)", "cc2017", {"ssim": 0.390, "epe": 4.833}),
    ("NEURONS (in SemVideo's table)", "cc2017", {"2way_V": 0.853}),
    ("SemVideo (project page)", "hcp", {"2way_I": 0.815, "2way_V": 0.796, "hue_pcc": 0.858, "clip_pcc": 0.523, "epe": 4.05}),
)


def read_clip_scores(path) -> dict[str, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no clips scored")
    return {name: np.array([float(r[name]) for r in rows]) for name in rows[0] if name != "clip_id"}


def summary_rows(scores: dict[tuple[str, str, str], dict[str, np.ndarray]]) -> list[dict]:
    """Rows of metrics.csv: per (dataset, variant, subject) the mean over clips, then per (dataset, variant) the
    mean over subjects (subject "mean")."""
    rows, groups = [], {}
    for (dataset, variant, subject), columns in scores.items():
        row = {"dataset": dataset, "variant": variant, "subject": subject, "clips": len(next(iter(columns.values())))}
        row |= {name: float(np.nanmean(values)) for name, values in columns.items()}
        rows.append(row)
        groups.setdefault((dataset, variant), []).append(row)
    for (dataset, variant), members in groups.items():
        names = _union(members, ("dataset", "variant", "subject", "clips"))
        mean = {"dataset": dataset, "variant": variant, "subject": "mean", "clips": sum(m["clips"] for m in members)}
        # A column some subjects lack (e.g. the judge's own chance of a one-clip ablation) is their others' mean.
        rows.append(mean | {name: float(np.nanmean([m.get(name, np.nan) for m in members])) for name in names})
    return rows


def _union(rows: list[dict], first: tuple[str, ...] = ()) -> list[str]:
    """The keys of all rows in order of first appearance, without `first`."""
    return [k for k in dict.fromkeys(k for row in rows for k in row) if k not in first]


def _fmt(value, column) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.2f}" if column in ("psnr", "epe") else f"{value:.3f}"


def markdown_table(rows: list[dict], judges: dict[str, dict], classes: dict[str, int], n_way: list[int]) -> str:
    """The paper's table: published rows, our per-variant means over subjects, a chance row. `judges`:
    {slot: {backend, stand_in}}; `classes`: classes of the image and video judges (for the exact chance)."""
    mark = {col: "†" if slot and judges[slot]["stand_in"] else "" for col, _, slot, _ in METRICS}
    header = ["row", "dataset", "clips", *(f"{label}{mark[col]} {'↑' if up else '↓'}" for col, label, _, up in METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, dataset, values in PUBLISHED:
        cells = [f"published: {label}", dataset, "", *(_fmt(values.get(c), c) for c, *_ in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    for row in rows:
        if row["subject"] == "mean":
            cells = [row["variant"], row["dataset"], str(row["clips"]), *(_fmt(row.get(c), c) for c, *_ in METRICS)]
            lines.append("| " + " | ".join(cells) + " |")
    chance = {}
    for n in n_way:
        for col, level in ((f"{n}way_I", "image_classifier"), (f"{n}way_V", "video_classifier")):
            if n - 1 <= classes[level] - 3:
                chance[col] = nway.n_way_chance(n, classes[level])
    lines.append("| " + " | ".join(["chance", "", "", *(_fmt(chance.get(c), c) for c, *_ in METRICS)]) + " |")
    notes = [
        "",
        "Our rows: mean over subjects of the mean over test clips (clips: scored clips, all subjects together; the "
        "ablations render only the first render.ablation_clips test clips); N-way are the references' 100-trial Monte Carlo "
        "(closed-form expectations in metrics.csv, columns `*_expected`). Chance: the top-3 protocol's exact "
        "expectation for an unrelated reconstruction; the other metrics have no chance level here.",
    ]
    stand_ins = [f"{slot}: {info['backend']}" for slot, info in judges.items() if info["stand_in"]]
    if stand_ins:
        notes.append("† computed with a stand-in judge (" + "; ".join(stand_ins) + "), not the paper's model: "
                     "compare these columns across our rows, never with the published ones.")
    return "\n".join(lines + notes) + "\n"


def judge_chance_table(rows: list[dict]) -> str:
    """N-way of each variant against its judges' own chance: the closed-form expectation for the matched ground
    truth beside the mean over every other test clip's ground truth (`*_mismatched`). A judge that ranks some
    classes high for every reconstruction moves the second away from the chance row; the difference is what the
    reconstruction's match adds."""
    columns = [(c, label) for c, label, *_ in METRICS if "way" in c and any(f"{c}_mismatched" in r for r in rows)]
    if not columns:
        return ""
    lines = ["", "N-way against the judge's own chance: closed-form expectation for the matched ground truth / for "
             "every other scored test clip's ground truth (mean), and their difference (clips: scored clips, all "
             "subjects together; fewer clips, fewer others to pair with).", "",
             "| variant | dataset | clips | " + " | ".join(label for _, label in columns) + " |",
             "|" + "---|" * (len(columns) + 3)]
    for row in rows:
        if row["subject"] == "mean" and any(f"{c}_mismatched" in row for c, _ in columns):
            cells = []
            for c, _ in columns:
                matched, mismatched = row.get(f"{c}_expected", np.nan), row.get(f"{c}_mismatched", np.nan)
                cells.append("–" if np.isnan(matched - mismatched) else
                             f"{matched:.3f} / {mismatched:.3f} ({matched - mismatched:+.3f})")
            lines.append("| " + " | ".join([row["variant"], row["dataset"], str(row["clips"]), *cells]) + " |")
    return "\n".join(lines) + "\n"


def probe_table(rows: list[dict]) -> str:
    """The demo scene probe's accuracy on each variant's frames (its accuracy on the ground truth is the ceiling)."""
    names = [k for k in ("probe_background", "probe_colour", "probe_shape") if any(k in r for r in rows)]
    if not names:
        return ""
    lines = ["", "Demo scene probe: fraction of reconstructed frames it reads right (see models/demo/probe.json for "
             "its accuracy on the ground truth and the majority-class chance).", "",
             "| variant | dataset | " + " | ".join(n.removeprefix("probe_") for n in names) + " |",
             "|" + "---|" * (len(names) + 2)]
    for row in rows:
        if row["subject"] == "mean" and names[0] in row:
            lines.append("| " + " | ".join([row["variant"], row["dataset"], *(_fmt(row[n], n) for n in names)]) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict], judges: dict, out_csv) -> None:
    names = ["dataset", "variant", "subject", "clips"]
    names += _union(rows, tuple(names))
    judge_note = ";".join(f"{slot}={info['backend']}{'(stand-in)' if info['stand_in'] else ''}" for slot, info in judges.items())
    with atomic_output(out_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*names, "judges"], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()} | {"judges": judge_note})


def bar_chart(scores: dict, column: str, label: str, higher_better: bool, out_png) -> None:
    """One bar per dataset and variant (subjects' clips pooled), error bars: s.e.m. over clips."""
    keys = sorted({(d, v) for d, v, _ in scores})
    means, errors = [], []
    for dataset, variant in keys:
        values = np.concatenate([c[column] for (d, v, _), c in scores.items() if (d, v) == (dataset, variant)])
        values = values[~np.isnan(values)]
        means.append(values.mean() if len(values) else np.nan)
        errors.append(values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0)
    figure, axis = plt.subplots(figsize=(1.0 + 0.7 * len(keys), 3.2))
    axis.bar(range(len(keys)), means, yerr=errors, capsize=3, color="#4c72b0")
    axis.set_xticks(range(len(keys)), [v if len({d for d, _ in keys}) == 1 else f"{d}\n{v}" for d, v in keys], rotation=45, ha="right")
    axis.set_ylabel(f"{label} ({'higher' if higher_better else 'lower'} is better)")
    axis.set_title(f"{label}: mean over test clips ± s.e.m.")
    figure.tight_layout()
    with atomic_output(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def frame_grid(truth_path, recon_paths: dict[str, str], clips: int, out_png) -> None:
    """Rows: ground truth, then each variant; columns: every frame of the first `clips` clips the variants share."""
    shared = None
    for path in recon_paths.values():
        ids = _clip_ids(path)
        shared = ids if shared is None else [c for c in shared if c in set(ids)]
    picked = (shared or [])[:clips]
    if not picked:
        raise ValueError(f"the reconstructions {list(recon_paths.values())} share no clip to show")
    rows = {"ground truth": read_clip_array(truth_path, "frames", picked)[0]}
    rows |= {name: read_clip_array(path, "frames", picked)[0] for name, path in recon_paths.items()}
    side = 96
    # One mosaic per row: a line of frames per clip, the clips under each other.
    mosaics = {name: np.concatenate([np.concatenate(list(clip), axis=1) for clip in resize_clips(c, side)])
               for name, c in rows.items()}
    height, width = mosaics["ground truth"].shape[:2]
    columns = 2
    grid_rows = -(-len(mosaics) // columns)
    figure, axes = plt.subplots(grid_rows, columns, figsize=(columns * 0.5 + columns * width / 90, grid_rows * (0.4 + height / 90)))
    axes = np.atleast_1d(axes).ravel()
    for axis, (name, mosaic) in zip(axes, mosaics.items()):
        axis.imshow(mosaic)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_title(name, fontsize=9)
    for axis in axes[len(mosaics):]:
        axis.axis("off")
    figure.suptitle(f"test clips {', '.join(picked)} (one per line), every evaluated frame", fontsize=9)
    figure.tight_layout()
    with atomic_output(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def _clip_ids(path) -> list[str]:
    with h5py.File(path, "r") as h5:
        return [c.decode() if isinstance(c, bytes) else str(c) for c in h5["clip_id"][()]]


def metrics_table(clip_csvs: dict[tuple[str, str, str], str], backends: dict[str, str], settings: dict, out: dict,
                  samples: dict[str, dict]) -> list[dict]:
    """Rule metrics_table. `clip_csvs`: {(dataset, variant, subject): per-clip CSV}; `backends`: {judge slot:
    backend}; `out`: csv, md, figures (folder); `samples`: {dataset: {truth, judged, reconstructions: {variant:
    path}}}, for the frame grids and the judges' class counts."""
    judges = {slot: {"backend": b, "stand_in": b in STAND_INS} for slot, b in backends.items()}
    with h5py.File(next(iter(samples.values()))["judged"], "r") as h5:
        classes = {"image_classifier": h5["image_logits"].shape[-1], "video_classifier": h5["video_logits"].shape[-1]}
    scores = {key: read_clip_scores(path) for key, path in clip_csvs.items()}
    rows = summary_rows(scores)
    write_csv(rows, judges, out["csv"])
    markdown = markdown_table(rows, judges, classes, settings["n_way"]) + judge_chance_table(rows) + probe_table(rows)
    with atomic_output(out["md"]) as tmp:
        Path(tmp).write_text("# Metrics\n\n" + markdown)
    figures = Path(out["figures"])
    for column, label, _, up in METRICS:
        if any(column in c for c in scores.values()):
            bar_chart(scores, column, label, up, figures / f"{column}.png")
    for dataset, sample in samples.items():
        frame_grid(sample["truth"], sample["reconstructions"], settings["sample_clips"], figures / f"frames_{dataset}.png")
    log.info("metrics of %d reconstructions -> %s, %s, %s", len(scores), out["csv"], out["md"], figures)
    print(markdown)
    return rows
