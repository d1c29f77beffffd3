"""The evaluation's judges, stage and tables: judges load from folders saved by save_pretrained (and a ViFi-CLIP
checkpoint file); the demo's image judge sees real images; a reconstruction identical to the ground truth scores
each metric's ceiling; the tables carry every row, the published rows and chance, and the figures are images."""

from __future__ import annotations

import csv

import cv2
import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data as skimage_data

from semvideo_core.backends.judges import (
    ClipImageEncoder,
    EfficientNetLite0,
    VideoMAEJudge,
    ViFiClipEncoder,
    VitClassifier,
    load_judge,
    vifi_visual_state,
)
from semvideo_core.io.clip_arrays import read_clip_array, write_clip_array
from semvideo_core.metrics import flow, packing
from semvideo_core.stages import evaluate as evaluate_stage
from semvideo_core.stages.evaluate import evaluate, judge_truth, truth_flows
from semvideo_core.stages.judge import build_video_judge
from semvideo_core.stages.tables import metrics_table, summary_rows, write_csv
from semvideo_core.world.labels import SCENE_CLASSES

EGYPTIAN_CAT = 285  # ImageNet-1k class index

JUDGE_SETTINGS = {"size": 32, "model": {"patch_size": 16, "hidden_size": 32, "layers": 1, "heads": 2}}


@pytest.fixture(scope="module")
def efficientnet():
    return EfficientNetLite0()


def test_efficientnet_lite0_names_a_real_photo(efficientnet):
    """The demo's image judge has real ImageNet weights: scikit-image's cat photo is an Egyptian cat."""
    logits = efficientnet.logits(skimage_data.chelsea()[None])
    assert logits.shape == (1, 1000) and logits[0].argmax() == EGYPTIAN_CAT
    assert efficientnet.features(skimage_data.chelsea()[None]).shape == (1, 1280)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_image_judge_in_the_gpus_half_precision_still_names_the_photo(efficientnet, dtype, half_precision_on_cpu):
    """evaluation.dtype float16 / bfloat16 as a GPU runs it (on the CPU here): the judge runs in that precision and
    hands back float32 logits and features close to float32's."""
    half = EfficientNetLite0("cpu", dtype)
    assert half.dtype == getattr(torch, dtype) and next(half.model.parameters()).dtype == half.dtype
    logits, features = half.logits_and_features(skimage_data.chelsea()[None])
    expected_logits, expected_features = efficientnet.logits_and_features(skimage_data.chelsea()[None])
    assert logits.dtype == features.dtype == np.float32 and logits[0].argmax() == EGYPTIAN_CAT
    np.testing.assert_allclose(logits, expected_logits, atol=0.05 * np.abs(expected_logits).max())
    np.testing.assert_allclose(features, expected_features, atol=0.05 * np.abs(expected_features).max())


def test_vit_and_clip_judges_load_from_save_pretrained_folders(tmp_path):
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    torch.manual_seed(0)
    vit = ViTForImageClassification(
        ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, num_labels=10)
    ).eval()
    vit.save_pretrained(tmp_path / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    clip = CLIPVisionModelWithProjection(
        CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, projection_dim=16)
    ).eval()
    clip.save_pretrained(tmp_path / "clip")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path / "clip")
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)

    judge = load_judge("image_classifier", {"backend": "vit", "path": str(tmp_path / "vit")})
    assert isinstance(judge, VitClassifier) and not judge.stand_in
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255 * 2 - 1  # the processor: mean = std = 0.5
    with torch.no_grad():
        np.testing.assert_allclose(judge.logits(frames), vit(pixel_values=pixels).logits.numpy(), atol=1e-4)

    encoder = load_judge("clip_image", {"backend": "clip", "path": str(tmp_path / "clip")})
    assert isinstance(encoder, ClipImageEncoder) and encoder.features(frames).shape == (3, 16)

    with pytest.raises(FileNotFoundError, match="config.json"):
        load_judge("image_classifier", {"backend": "vit", "path": str(tmp_path)})
    with pytest.raises(ValueError, match="not one of"):
        load_judge("image_classifier", {"backend": "clip", "path": str(tmp_path / "clip")})


def test_vifi_checkpoint_loads_into_a_clip_vit_b16_visual_tower(tmp_path):
    """A checkpoint laid out as ViFi-CLIP saves it ({'model': {'module.image_encoder.*': ...}}, with the text side
    beside it) loads into a ViT-B/16 tower of OpenAI's CLIP architecture, whose MLPs use QuickGELU, x sigmoid(1.702 x)
    (open_clip's plain ViT-B-16 uses exact GELU and takes the same tensors), and gives that tower's features; with the
    references' channel swap it sees R and B exchanged."""
    import open_clip

    torch.manual_seed(0)
    visual = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True).visual.eval()
    state = {f"module.image_encoder.{k}": v for k, v in visual.state_dict().items()}
    state["module.text_encoder.positional_embedding"] = torch.zeros(77, 512)
    torch.save({"model": state, "epoch": 10}, tmp_path / "vifi.pth")
    encoder = load_judge("vifi_clip", {"backend": "vifi_clip", "path": str(tmp_path / "vifi.pth")})
    assert isinstance(encoder, ViFiClipEncoder)
    clips = np.random.default_rng(0).integers(0, 256, (1, 6, 256, 256, 3), dtype=np.uint8)
    features = encoder.features(clips)
    assert features.shape == (1, 8, 512)  # six frames sampled as eight, frames 0 and 1 twice
    crop = (clips[0, :, 16:240, 16:240].astype(np.float32) - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    with torch.no_grad():
        expected = visual(torch.from_numpy(crop.astype(np.float32)).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(features[0, :6], expected, atol=1e-4)
    np.testing.assert_allclose(features[0, 6:], expected[:2], atol=1e-4)
    probe = torch.linspace(-4, 4, 81)
    for block in encoder.model.transformer.resblocks:
        activation = block.mlp[1](probe)
        torch.testing.assert_close(activation, probe * torch.sigmoid(1.702 * probe))
        assert (activation - F.gelu(probe)).abs().max() > 0.01
    swapped = load_judge("vifi_clip", {"backend": "vifi_clip", "path": str(tmp_path / "vifi.pth")}, vifi_bgr_quirk=True)
    np.testing.assert_array_equal(swapped.features(clips), encoder.features(np.ascontiguousarray(clips[..., ::-1])))

    torch.save({"model": {"module.text_encoder.x": torch.zeros(1)}}, tmp_path / "text_only.pth")
    with pytest.raises(ValueError, match="text_only.pth: no CLIP image encoder"):
        vifi_visual_state(tmp_path / "text_only.pth")


def save_demo_judge(folder, frames=6):
    torch.manual_seed(0)
    model, processor = build_video_judge(JUDGE_SETTINGS, frames)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model.eval()


def test_demo_video_judge_loads_back_through_from_pretrained(tmp_path):
    model = save_demo_judge(tmp_path / "judge")
    judge = load_judge("video_classifier", {"backend": "demo", "path": None}, frames=6, demo_folder=tmp_path / "judge")
    assert isinstance(judge, VideoMAEJudge) and judge.stand_in
    clips = np.random.default_rng(1).integers(0, 256, (2, 6, 32, 32, 3), dtype=np.uint8)
    pixels = (torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        expected = model(pixel_values=pixels).logits.numpy()
    logits = judge.logits(clips)
    assert logits.shape == (2, len(SCENE_CLASSES)) and len(SCENE_CLASSES) == 64
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert judge.features(clips).shape == (2, 1, 32)
    with pytest.raises(ValueError, match="even clip length"):
        VideoMAEJudge(tmp_path / "judge", 5, "demo")


def _judge_settings(folder):
    return {
        "models": {
            "image_classifier": {"backend": "efficientnet_lite0", "path": None},
            "video_classifier": {"backend": "demo", "path": None},
            "clip_image": {"backend": "efficientnet_lite0", "path": None},
            "vifi_clip": {"backend": "demo", "path": None},
        },
        "demo_folder": str(folder),
        "stand_in_size": 64,
        "batch_size": 8,
        "device": "cpu",
        "dtype": "float32",
    }


SCORING = {
    "frames": None, "size": None, "ssim": "rgb7", "hue_bgr_quirk": True, "clip_pcc": "ma_adjacent_gated",
    "vifi_gate": 0.6, "epe_size": 64, "epe_bgr_quirk": True, "n_way": [2, 50], "trials": 20, "seed": 0,
    "reference_packing": False,
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Ground truth (smooth moving blobs), a reconstruction identical to it and a shuffled one, evaluated."""
    tmp = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    clips = np.zeros((6, 6, 32, 32, 3), np.uint8)
    for i in range(6):
        colour = rng.integers(40, 255, 3)
        for t in range(6):
            blob = np.exp(-((xx - 8 - 2 * t - i) ** 2 + (yy - 10 - i) ** 2) / 30.0)
            clips[i, t] = (blob[..., None] * colour + 20).astype(np.uint8)
    ids = [f"test1_{i + 1}" for i in range(6)]
    write_clip_array(tmp / "truth.h5", "frames", clips, ids)
    write_clip_array(tmp / "same.h5", "frames", clips, ids)
    write_clip_array(tmp / "shuffled.h5", "frames", clips[[1, 2, 3, 4, 5, 0]], ids)
    save_demo_judge(tmp / "judge")
    settings = _judge_settings(tmp / "judge")
    judge_truth(tmp / "truth.h5", settings, {"frames": None, "size": None}, tmp / "judged.h5")
    out = {}
    for name in ("same", "shuffled"):
        inputs = {"reconstruction": tmp / f"{name}.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5"}
        evaluate(inputs, settings, SCORING, tmp / f"{name}.csv", workers=2)
        with open(tmp / f"{name}.csv", newline="") as handle:
            out[name] = list(csv.DictReader(handle))
    return tmp, out


def test_a_reconstruction_equal_to_the_truth_scores_every_ceiling(scored):
    _, out = scored
    rows = out["same"]
    assert [r["clip_id"] for r in rows] == [f"test1_{i + 1}" for i in range(6)]
    for row in rows:
        value = {k: float(v) for k, v in row.items() if k != "clip_id"}
        for n in (2, 50):  # the truth's own top class beats every distractor
            assert value[f"{n}way_I_expected"] == 1.0 and value[f"{n}way_I"] == 1.0
            assert value[f"{n}way_V_expected"] == 1.0 and value[f"{n}way_V"] == 1.0
        assert value["ssim"] == pytest.approx(1.0) and value["psnr"] == 100.0
        assert value["hue_pcc"] == pytest.approx(1.0) and value["epe"] == pytest.approx(0.0, abs=1e-6)
        assert value["vifi"] == pytest.approx(1.0, abs=1e-5)
        assert value["clip_pcc"] > 0.0  # VIFI 1 passes the gate


def test_a_shuffled_reconstruction_scores_below_the_identical_one(scored):
    _, out = scored
    mean = {k: np.mean([float(r[k]) for r in out["shuffled"]]) for k in out["shuffled"][0] if k != "clip_id"}
    assert mean["ssim"] < 0.99 and mean["psnr"] < 60 and mean["epe"] > 0.01 and mean["vifi"] < 1.0


def test_the_judges_own_chance_pairs_each_reconstruction_with_every_other_clips_truth(scored):
    """The shuffled reconstruction of clip i is clip i + 1's truth, so its matched score plus its 5 mismatched ones
    are exactly the identical reconstruction of clip i + 1 against all 6 truths: 1 (its own) + its 5 mismatched."""
    _, out = scored
    for level in ("I", "V"):
        for n in (2, 50):
            same = np.array([float(r[f"{n}way_{level}_mismatched"]) for r in out["same"]])
            matched = np.array([float(r[f"{n}way_{level}_expected"]) for r in out["shuffled"]])
            mismatched = np.array([float(r[f"{n}way_{level}_mismatched"]) for r in out["shuffled"]])
            # atol: the CSVs keep 6 significant digits
            np.testing.assert_allclose(5 * mismatched + matched, 5 * np.roll(same, -1) + 1, atol=1e-5)


def test_judged_truth_from_another_protocol_is_refused(scored, tmp_path):
    tmp, _ = scored
    inputs = {"reconstruction": tmp / "same.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5"}
    with pytest.raises(ValueError, match="judged.h5: judged under another protocol"):
        evaluate(inputs, _judge_settings(tmp / "judge"), {**SCORING, "size": 48}, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_stored_truth_flows_are_opencvs_and_score_the_same_epe(scored, tmp_path, monkeypatch):
    """Rule truth_flows' file holds OpenCV's own Farnebäck flow of each grey frame pair, and an evaluation that reads
    it (in chunks, for a reconstruction whose clips come in another order) writes the same EPE as one that computes
    the truth's flows itself."""
    tmp, out = scored
    monkeypatch.setattr(evaluate_stage, "FLOW_CHUNK", 4)  # two reads for six clips
    truth_flows(tmp / "truth.h5", SCORING, tmp_path / "flows.h5", workers=2)
    with h5py.File(tmp / "truth.h5") as h5, h5py.File(tmp_path / "flows.h5") as stored:
        clip = h5["frames"][2]
        assert stored["flows"].shape == (6, 5, 64, 64, 2) and stored["flows"].dtype == np.float32
        first, second = (cv2.cvtColor(cv2.resize(f, (64, 64)), cv2.COLOR_BGR2GRAY) for f in clip[3:5])
        expected = cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        np.testing.assert_array_equal(stored["flows"][2, 3], expected)
    with h5py.File(tmp / "shuffled.h5") as h5:
        ids = [i.decode() for i in h5["clip_id"][:]]
        write_clip_array(tmp_path / "reversed.h5", "frames", h5["frames"][:][::-1], ids[::-1])
    inputs = {"reconstruction": tmp_path / "reversed.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5"}
    evaluate({**inputs, "flows": tmp_path / "flows.h5"}, _judge_settings(tmp / "judge"), SCORING, tmp_path / "r.csv")
    with open(tmp_path / "r.csv", newline="") as handle:
        stored_epe = {row["clip_id"]: row["epe"] for row in csv.DictReader(handle)}
    assert stored_epe == {row["clip_id"]: row["epe"] for row in out["shuffled"]}


def test_truth_flows_of_another_setting_unreadable_or_for_gif_packing_are_refused(scored, tmp_path):
    tmp, _ = scored
    truth_flows(tmp / "truth.h5", {**SCORING, "epe_size": 48}, tmp_path / "flows.h5")
    inputs = {"reconstruction": tmp / "same.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5",
              "flows": tmp_path / "flows.h5"}
    with pytest.raises(ValueError, match="flows.h5: flows made with .*'epe_size', 48.*rerun truth_flows"):
        evaluate(inputs, _judge_settings(tmp / "judge"), SCORING, tmp_path / "x.csv")
    with pytest.raises(ValueError, match="flows.h5: stored truth flows cannot serve reference_packing"):
        evaluate(inputs, _judge_settings(tmp / "judge"), {**SCORING, "reference_packing": True}, tmp_path / "x.csv")
    (tmp_path / "flows.h5").write_bytes(b"half a file")
    with pytest.raises(ValueError, match="flows.h5: not a readable flows file"):
        evaluate(inputs, _judge_settings(tmp / "judge"), SCORING, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_reference_packing_takes_epes_recon_from_the_recons_only_gif(scored, tmp_path):
    """Mind-Animator's EPE reads the truth from the padded side-by-side GIF but the reconstruction from its own
    recons-only GIF (no padding, a palette of its own): under reference_packing ours does the same."""
    tmp, _ = scored
    inputs = {"reconstruction": tmp / "shuffled.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5"}
    settings = {**SCORING, "reference_packing": True}
    evaluate(inputs, _judge_settings(tmp / "judge"), settings, tmp_path / "packed.csv")
    with open(tmp_path / "packed.csv", newline="") as handle:
        scored_epe = [float(row["epe"]) for row in csv.DictReader(handle)]
    recon, ids = read_clip_array(tmp / "shuffled.h5", "frames")
    truth_view = evaluate_stage.prepare(read_clip_array(tmp / "truth.h5", "frames", ids)[0], settings)
    recon_view = evaluate_stage.prepare(recon, settings, side=truth_view.shape[2])
    truth_half, recon_half = packing.pack_like_references(truth_view, recon_view)
    clean_gif = packing.recons_only_gif(recon_view)
    expected = flow.epe(clean_gif, truth_half, settings["epe_size"], settings["epe_bgr_quirk"])
    np.testing.assert_allclose(scored_epe, expected, rtol=1e-5)
    padded = flow.epe(recon_half, truth_half, settings["epe_size"], settings["epe_bgr_quirk"])
    assert np.abs(padded - expected).max() > 1e-3, "the padded recon half would score otherwise"


def test_metrics_table_writes_rows_published_numbers_chance_and_figures(scored, tmp_path):
    tmp, _ = scored
    csvs = {("demo", "oracle", "subject1"): tmp / "same.csv", ("demo", "full", "subject1"): tmp / "shuffled.csv",
            ("demo", "full", "subject2"): tmp / "shuffled.csv"}
    backends = {"image_classifier": "efficientnet_lite0", "video_classifier": "demo", "clip_image": "efficientnet_lite0",
                "vifi_clip": "demo"}
    samples = {"demo": {"truth": str(tmp / "truth.h5"), "judged": str(tmp / "judged.h5"),
                        "reconstructions": {"oracle": str(tmp / "same.h5"), "full": str(tmp / "shuffled.h5")}}}
    out = {"csv": tmp_path / "metrics.csv", "md": tmp_path / "metrics.md", "figures": tmp_path / "figures"}
    metrics_table(csvs, backends, {"n_way": [2, 50], "sample_clips": 2}, out, samples)
    with open(out["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["variant"], r["subject"]) for r in rows} == {
        ("oracle", "subject1"), ("full", "subject1"), ("full", "subject2"), ("oracle", "mean"), ("full", "mean")
    }
    oracle = next(r for r in rows if r["variant"] == "oracle" and r["subject"] == "mean")
    assert float(oracle["psnr"]) == 100.0 and "(stand-in)" in oracle["judges"]
    text = out["md"].read_text()
    assert "published: SemVideo (paper)" in text and "0.838" in text
    chance = next(line for line in text.splitlines() if line.startswith("| chance"))
    assert "0.750" in chance and "0.058" in chance  # 3 / 4 and 3 / 52: the top-3 protocol's chance
    assert "†" in text and "stand-in judge" in text
    own_chance = next(line for line in text.splitlines() if line.startswith("| oracle | demo | 6 | 1.000 / "))
    assert own_chance.count("/") == 4  # matched / mismatched for 2- and 50-way, -I and -V
    import matplotlib.image

    for name in ("ssim", "2way_V", "epe", "frames_demo"):
        image = matplotlib.image.imread(out["figures"] / f"{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100


def test_a_column_only_some_reconstructions_have_reaches_metrics_csv(tmp_path):
    """A one-clip ablation has no judge's own chance (no other clip to pair with): the column stays for the rest,
    and a mean over subjects takes the subjects that have it."""
    scores = {
        ("demo", "no_anchor", "subject1"): {"ssim": np.array([0.5])},
        ("demo", "full", "subject1"): {"ssim": np.array([0.2, 0.4]), "2way_V_mismatched": np.array([0.6, 0.8])},
        ("demo", "full", "subject2"): {"ssim": np.array([0.3])},
    }
    rows = summary_rows(scores)
    full = next(r for r in rows if r["variant"] == "full" and r["subject"] == "mean")
    assert full["ssim"] == pytest.approx(0.3) and full["2way_V_mismatched"] == pytest.approx(0.7)
    write_csv(rows, {}, tmp_path / "metrics.csv")
    with open(tmp_path / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["2way_V_mismatched"] for r in table] == ["", "0.7", "", "", "0.7"]


def test_a_reconstruction_of_clips_without_ground_truth_is_refused(scored, tmp_path):
    tmp, _ = scored
    frames = np.zeros((1, 6, 32, 32, 3), np.uint8)
    write_clip_array(tmp_path / "stray.h5", "frames", frames, ["test9_1"])
    inputs = {"reconstruction": tmp_path / "stray.h5", "truth": tmp / "truth.h5", "judged": tmp / "judged.h5"}
    with pytest.raises(ValueError, match=r"truth.h5: 1 clips are missing"):
        evaluate(inputs, _judge_settings(tmp / "judge"), SCORING, tmp_path / "stray.csv")
    write_clip_array(tmp_path / "short.h5", "frames", np.zeros((1, 4, 32, 32, 3), np.uint8), ["test1_1"])
    inputs["reconstruction"] = tmp_path / "short.h5"
    with pytest.raises(ValueError, match=r"short.h5: 4 frames per clip against 6"):
        evaluate(inputs, _judge_settings(tmp / "judge"), SCORING, tmp_path / "short.csv")
    assert not list(tmp_path.glob("*.csv"))
