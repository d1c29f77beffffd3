"""CVR's anchor frame and the demo judges of it: the scene labels against hand-worked shots, the probe's shapes,
the demo text-to-image UNet (its loss against the closed-form noising, saving and loading back offline, exact
resume), and render_anchor (same seed -> same frames, independent of batching, each variant's cue, resume after a
kill renders only the missing clips, bad inputs named by file); the video render; both renders in the GPU's half
precision."""

import csv
import json
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import UNetMotionModel
from diffusers.models.attention_processor import Attention
from PIL import Image

from semvideo_core.backends.generators import (
    build_tiny_motion_adapter,
    build_tiny_sparsectrl,
    build_tiny_unet,
    load_motion_adapter,
    load_scheduler,
    load_sparsectrl,
    load_unet,
    training_scheduler,
)
from semvideo_core.backends.probe import accuracy, classify_frames
from semvideo_core.backends.vae import build_demo_vae
from semvideo_core.io.clip_arrays import read_clip_array, write_clip_array
from semvideo_core.io.embeddings import write_embeddings
from semvideo_core.models.probe import ProbeConfig, SceneProbe
from semvideo_core.pixels import to_uint8
from semvideo_core.render.anchor import anchor_pipeline, render_anchor_frames
from semvideo_core.render.video import interpolate_frames, render_videos, video_pipeline
from semvideo_core.stages import cvr
from semvideo_core.stages.cvr import (
    denoising_loss,
    render_anchor,
    render_video,
    train_motion_adapter,
    train_sparsectrl,
    train_t2i,
)
from semvideo_core.stages.probe import _jitter, _recolour
from semvideo_core.training import TrainingStopped
from semvideo_core.world.labels import LABELS, shot_label_maps, shot_labels

UNET = dict(
    block_out_channels=[8, 16], layers_per_block=1, cross_attention_levels=1, norm_num_groups=4, attention_head_dim=4
)
T2I = dict(
    model=UNET,
    prediction_type="v_prediction",
    beta_schedule="squaredcos_cap_v2",
    min_snr_gamma=5.0,
    condition_drop=0.2,
    val_fraction=0.2,
    frames="all",
    train=dict(epochs=2, batch_size=4, lr=0.002),
)
ANCHOR = dict(strength=0.6, steps=4, guidance=3.0, seed=7)
IDS = [f"test1_{k}" for k in range(1, 6)]


def _object(shape, colour, size, motion="left", x=0.5, y=0.5, speed=0.0):
    return dict(shape=shape, colour=colour, size=size, motion=motion, x=x, y=y, speed=speed)


def _shot(start, duration, background, objects, colours=("black", "gray")):
    return dict(
        offset_s=int(start),
        start=start,
        duration=duration,
        background=background,
        colours=list(colours),
        objects=objects,
    )


def test_shot_labels_follow_the_cut_and_the_object_covering_most_pixels_at_each_instant():
    # Shot 1 (0-4 s, striped): a medium red square (half-side 0.8 x 0.13: area 2.56 x 0.13^2 = 0.0433 of the frame)
    # at the left, and a small blue circle at the right that grows by 80% over the shot: area pi (0.09 (1 + 0.2 t))^2
    # passes the square's after t = 1.52 s (its radius passes the square's 0.13 only after 2.22 s).
    # Shot 2 (4-7 s, flat): a large white hexagon (area 2.598 x 0.17^2 = 0.0751) under a medium green circle at the
    # same centre (0.0531): the hexagon keeps 0.0220 visible, so the circle is the largest on screen although the
    # hexagon's radius is the larger.
    # Shot 3 (from 7 s, gradient): a large cyan circle (radius 0.17) centred 0.05 beyond the left edge, so that only
    # the segment r^2 acos(d / r) - d sqrt(r^2 - d^2) = 0.0287 is on screen, and a medium yellow square inside (0.0433).
    red_square = _object("square", "red", "medium", x=0.25)
    growing_blue_circle = _object("circle", "blue", "small", "grow", x=0.75)
    white_hexagon = _object("hexagon", "white", "large")
    green_circle_on_top = _object("circle", "green", "medium")
    cyan_circle_off_edge = _object("circle", "cyan", "large", x=-0.05)
    yellow_square = _object("square", "yellow", "medium", x=0.6)
    shots = [
        _shot(0.0, 4.0, "striped", [red_square, growing_blue_circle], colours=("gray", "navy")),
        _shot(4.0, 3.0, "flat", [white_hexagon, green_circle_on_top]),
        _shot(7.0, 3.0, "gradient", [cyan_circle_off_edge, yellow_square]),
    ]
    labels = shot_labels(shots, np.array([0.0, 1.0, 2.0, 3.9, 4.0, 6.0, 7.5]))
    bg, colour, shape = LABELS["background"], LABELS["colour"], LABELS["shape"]
    square = (bg.index("striped"), colour.index("red"), shape.index("square"))
    circle = (bg.index("striped"), colour.index("blue"), shape.index("circle"))
    on_top = (bg.index("flat"), colour.index("green"), shape.index("circle"))
    inside = (bg.index("gradient"), colour.index("yellow"), shape.index("square"))
    assert [tuple(row) for row in labels] == [square, square, circle, circle, on_top, on_top, inside]


def test_label_maps_hold_the_object_on_top_at_each_pixel_and_zero_on_the_background():
    # A large white hexagon (radius 0.17, angle 0: flat sides at x = +-0.866 x 0.17 = +-0.147 from its centre) under
    # a medium green circle (radius 0.13), both centred in a 100-pixel frame (pixel centres at (i + 0.5) / 100).
    shots = [_shot(0.0, 3.0, "flat", [_object("hexagon", "white", "large"), _object("circle", "green", "medium")])]
    maps = shot_label_maps(shots, np.array([1.0]), 100)[0]  # [100, 100, 2]
    colour, shape = LABELS["colour"], LABELS["shape"]
    circle = (shape.index("circle") + 1, colour.index("green") + 1)
    hexagon = (shape.index("hexagon") + 1, colour.index("white") + 1)
    assert tuple(maps[50, 50]) == circle  # 0.007 from the centre
    assert tuple(maps[50, 64]) == hexagon  # 0.145: inside the hexagon's flat side, outside the circle
    assert tuple(maps[34, 50]) == hexagon  # 0.155 towards a corner (0.17)
    assert tuple(maps[50, 66]) == (0, 0) and tuple(maps[0, 0]) == (0, 0)  # 0.165 beyond the flat side; a corner


def test_the_probes_augmentations_move_each_frames_label_maps_with_it():
    """A frame whose grey level encodes its map: after the flips, shifts, channel permutations and quarter turns
    the frame must still encode its (moved) map."""
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 8, (6, 16, 16, 2), dtype=np.uint8)
    frames = np.repeat(maps[..., :1] * 30, 3, axis=-1)
    for augment in (_jitter, _recolour):
        moved_frames, moved_maps = augment(frames, maps, rng)
        assert not np.array_equal(moved_maps, maps)
        np.testing.assert_array_equal(moved_frames, np.repeat(moved_maps[..., :1] * 30, 3, axis=-1))


def test_probe_reads_frames_of_any_size():
    probe = SceneProbe(ProbeConfig(size=32, channels=[4, 8], dense_stage=0)).eval()
    logits = probe(torch.zeros(2, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"background": (2, 4), "colour": (2, 8), "shape": (2, 7)}
    dense = probe(torch.zeros(2, 3, 32, 32), dense=True)  # per 2 x 2 cell after the first stage: background + classes
    assert tuple(dense["dense_shape"].shape) == (2, 8, 16, 16) and tuple(dense["dense_colour"].shape) == (2, 9, 16, 16)
    frames = np.random.default_rng(0).integers(0, 256, (3, 2, 48, 48, 3), dtype=np.uint8)
    labels = classify_frames(probe, frames, batch_size=4)
    assert labels.shape == (3, 2, 3)
    assert accuracy(labels, labels) == {"background": 1.0, "colour": 1.0, "shape": 1.0}


class _FixedMaps(torch.nn.Module):
    def __init__(self, maps):
        super().__init__()
        self.maps = maps

    def forward(self, pixels):
        return self.maps.expand(len(pixels), -1, -1, -1)


def test_the_probe_reads_the_colour_that_covers_the_most_cells_not_the_pooled_heads():
    """Dense readout: the pooled colour head says magenta everywhere; the dense map says blue in 3 of 4 cells and red
    in 1, so blue (the largest object's colour) is read; with colour_readout head, the head's magenta."""
    colour = LABELS["colour"]
    probe = SceneProbe(
        ProbeConfig(size=8, channels=[4, 4], dense_stage=1, colour_readout="dense")
    ).eval()  # 2 x 2 cells
    with torch.no_grad():
        for head in (probe.heads["colour"], probe.dense_heads["colour"]):
            head.weight.zero_()
            head.bias.zero_()
        probe.heads["colour"].bias[colour.index("magenta")] = 5.0
        probe.dense_heads["colour"].bias[colour.index("blue") + 1] = 5.0  # class 0 of the map is the background
        probe.dense_heads["colour"].weight[colour.index("red") + 1, 0] = 100.0  # red where channel 0 fires
    maps = torch.zeros(1, 4, 2, 2)
    maps[0, 0, 0, 1] = 1.0  # channel 0 fires in one of the four cells
    probe.stages[1] = _FixedMaps(maps)
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    assert classify_frames(probe, frames)[:, 1].tolist() == [colour.index("blue")] * 2
    probe.config.colour_readout = "head"
    assert classify_frames(probe, frames)[:, 1].tolist() == [colour.index("magenta")] * 2


def test_denoising_loss_is_the_closed_form_noising_error():
    """epsilon prediction with gamma above every SNR: weight 1, so the loss is the plain MSE between the UNet's
    output on sqrt(a) x + sqrt(1 - a) noise and the noise."""
    torch.manual_seed(0)
    scheduler = training_scheduler(dict(beta_schedule="linear", prediction_type="epsilon"))
    unet = build_tiny_unet(UNET, 4, 8, 6).eval()
    x, noise, tokens = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8), torch.randn(3, 5, 6)
    t = torch.tensor([10, 500, 990])
    alpha = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = alpha.sqrt() * x + (1 - alpha).sqrt() * noise
    with torch.no_grad():
        expected = F.mse_loss(unet(noisy, t, encoder_hidden_states=tokens).sample, noise)
        loss = denoising_loss(unet, scheduler, x, tokens, noise, t, min_snr_gamma=1e9)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.fixture()
def t2i_inputs(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"seg1_{k}" for k in range(1, 13)]
    latents = rng.standard_normal((12, 2, 4, 8, 8)).astype(np.float16)
    write_clip_array(tmp_path / "latents.h5", "latents", latents, ids)
    embeds = torch.from_numpy(rng.standard_normal((12, 5, 6)).astype(np.float32))
    write_embeddings(
        tmp_path / "anchor.safetensors", {"embeds": embeds}, ids, constants={"empty": torch.zeros(1, 5, 6)}
    )
    return tmp_path


def test_t2i_saves_a_pipeline_folder_that_loads_back_offline(t2i_inputs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = t2i_inputs / "t2i"
    scores = train_t2i(t2i_inputs / "latents.h5", t2i_inputs / "anchor.safetensors", T2I, out, t2i_inputs / "state")
    assert np.isfinite(scores["denoising"])
    unet, scheduler = load_unet(out), load_scheduler(out)
    assert unet.config.cross_attention_dim == 6 and unet.config.sample_size == 8
    assert scheduler.config.prediction_type == "v_prediction" and type(scheduler).__name__ == "DDIMScheduler"
    assert json.loads((out / "training.json").read_text())["settings"] == T2I
    assert not (t2i_inputs / "state" / "checkpoint.safetensors").exists()


def test_the_held_out_loss_scores_every_timestep_once_per_epoch(t2i_inputs, monkeypatch):
    """Each epoch scores the held-out samples once, each noised to one of the validation timesteps in turn, and the
    saved model's score is the last epoch's, not a second pass over the held-out clips."""
    held_out_calls = []

    def spy(model, scheduler, x, tokens, noise, t, gamma):
        if not torch.is_grad_enabled():
            held_out_calls.append(t.tolist())
        return cvr.denoising_loss(model, scheduler, x, tokens, noise, t, gamma)

    monkeypatch.setattr(cvr, "_denoise", spy)
    out, state = t2i_inputs / "t2i", t2i_inputs / "state"
    scores = train_t2i(t2i_inputs / "latents.h5", t2i_inputs / "anchor.safetensors", T2I, out, state)
    # 12 clips x 2 frames, 20 % of the clips held out: 2 clips, 4 samples -> the first four timesteps
    assert held_out_calls == [[100, 300, 500, 700]] * T2I["train"]["epochs"]
    with open(state / "log.csv", newline="") as handle:
        last_epoch = list(csv.DictReader(handle))[-1]
    assert float(last_epoch["val_denoising"]) == pytest.approx(scores["denoising"], rel=1e-6)


@pytest.mark.parametrize("frames, steps_per_epoch", [("all", 5), ("first", 2)])
def test_t2i_learns_every_frame_of_its_training_clips_and_holds_out_whole_clips(t2i_inputs, frames, steps_per_epoch):
    """12 clips of 2 frames, 2 clips held out: 10 x 2 frames (or 10 first frames) in batches of 4 per epoch."""
    out, state = t2i_inputs / frames, t2i_inputs / f"state_{frames}"
    train_t2i(t2i_inputs / "latents.h5", t2i_inputs / "anchor.safetensors", T2I | {"frames": frames}, out, state)
    with open(state / "log.csv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == [steps_per_epoch, 2 * steps_per_epoch]
    held_out = json.loads((out / "training.json").read_text())["val_clips"]
    assert len(held_out) == 2 and set(held_out) <= {f"seg1_{k}" for k in range(1, 13)}


def test_t2i_resumes_exactly_after_a_kill(t2i_inputs, caplog):
    args = (t2i_inputs / "latents.h5", t2i_inputs / "anchor.safetensors", T2I)
    train_t2i(*args, t2i_inputs / "whole", t2i_inputs / "state_whole")
    with pytest.raises(TrainingStopped):
        train_t2i(*args, t2i_inputs / "killed", t2i_inputs / "state_killed", stop_after_steps=3)
    assert not (t2i_inputs / "killed").exists()
    # restarted with another checkpoint interval, which says how often the job saves, not what it learns
    other_interval = T2I | {"train": T2I["train"] | {"checkpoint_every": 1}}
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"):
        train_t2i(*args[:2], other_interval, t2i_inputs / "killed", t2i_inputs / "state_killed")
    assert "resuming at step 3" in caplog.text
    whole, resumed = load_unet(t2i_inputs / "whole").state_dict(), load_unet(t2i_inputs / "killed").state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


@pytest.fixture(scope="module")
def render_world(tmp_path_factory):
    """A random-weight VAE (16 px frames -> 4 x 8 x 8) and t2i UNet on disk (shapes and plumbing only), motion
    frames of 5 test clips and anchor embeddings."""
    root = tmp_path_factory.mktemp("render")
    torch.manual_seed(0)
    build_demo_vae([8, 16], 1, 4, 4, 16).save_pretrained(root / "vae")
    build_tiny_unet(UNET, 4, 8, 6).save_pretrained(root / "t2i" / "unet")
    training_scheduler(T2I).save_pretrained(root / "t2i" / "scheduler")
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (5, 3, 16, 16, 3), dtype=np.uint8)
    write_clip_array(root / "motion_frames.h5", "frames", frames, IDS)
    truth = torch.from_numpy(rng.standard_normal((5, 5, 6)).astype(np.float32))
    write_embeddings(root / "embeds.safetensors", {"embeds": truth}, IDS, constants={"empty": torch.zeros(1, 5, 6)})
    decoded = torch.from_numpy(rng.standard_normal((5, 5, 6)).astype(np.float32))
    write_embeddings(root / "decoded.safetensors", {"embeds": decoded}, IDS)
    return root


def _render(root, out, variant="full", batch_size=2, **anchor):
    inputs = {"motion_frames": root / "motion_frames.h5", "anchor_truth": root / "embeds.safetensors"}
    if variant == "full":
        inputs["anchor"] = root / "decoded.safetensors"
    source = {"full": "decoded", "no_anchor": "empty", "oracle": "truth"}[variant]
    settings = dict(
        variant=variant,
        source=source,
        anchor={**ANCHOR, **anchor},
        batch_size=batch_size,
        device="cpu",
        dtype="float32",
    )
    return render_anchor(inputs, root / "t2i", root / "vae", settings, root / out, root / f"cache_{out}")


def test_same_seed_same_frames_whatever_the_batching(render_world):
    first = _render(render_world, "a.h5", batch_size=2)
    again = _render(render_world, "b.h5", batch_size=5)
    assert first.shape == (5, 16, 16, 3) and first.dtype == np.uint8
    assert np.abs(first.astype(int) - again).max() <= 1  # only the float summation order differs with the batch
    np.testing.assert_array_equal(first, _render(render_world, "a2.h5", batch_size=2))
    assert read_clip_array(render_world / "a.h5", "anchor")[1] == IDS
    assert not (render_world / "cache_a.h5").exists(), "a finished job leaves no cache"
    assert (first != _render(render_world, "c.h5", seed=8)).any()


def test_each_variant_changes_its_cue(render_world):
    full = _render(render_world, "full.h5")
    no_anchor = _render(render_world, "no_anchor.h5", variant="no_anchor")
    oracle = _render(render_world, "oracle.h5", variant="oracle")
    assert (full != no_anchor).any() and (full != oracle).any() and (oracle != no_anchor).any()
    # The init image is the first motion frame: the later frames do not matter, the first one does.
    frames, ids = read_clip_array(render_world / "motion_frames.h5", "frames")
    later, first = frames.copy(), frames.copy()
    later[:, 1:], first[:, 0] = 255 - frames[:, 1:], 255 - frames[:, 0]
    for name, changed in (("later", later), ("first", first)):
        write_clip_array(render_world / f"frames_{name}.h5", "frames", changed, ids)
    settings = dict(variant="oracle", source="truth", anchor=ANCHOR, batch_size=2, device="cpu", dtype="float32")

    def from_frames(name):
        inputs = {
            "motion_frames": render_world / f"frames_{name}.h5",
            "anchor_truth": render_world / "embeds.safetensors",
        }
        return render_anchor(
            inputs,
            render_world / "t2i",
            render_world / "vae",
            settings,
            render_world / f"{name}.h5",
            render_world / f"c_{name}",
        )

    np.testing.assert_array_equal(from_frames("later"), oracle)
    assert (from_frames("first") != oracle).any()


@pytest.mark.parametrize("upgraded", [False, True], ids=["same code", "diffusers upgraded"])
def test_a_killed_render_resumes_with_the_clips_it_had_not_rendered(render_world, monkeypatch, upgraded):
    """A killed job's rerun renders only the clips it had not rendered; but the cache is tied to the code and
    libraries that rendered it as well as to its inputs and settings, so after an upgrade (here diffusers' version
    string) the rerun renders every clip again."""
    whole, out = _render(render_world, "whole.h5"), f"resumed_{upgraded}.h5"  # render_world is shared
    original, calls = cvr.render_anchor_frames, []

    def killed_after_one_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(cvr, "render_anchor_frames", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        _render(render_world, out)
    assert not (render_world / out).exists()
    assert len(list((render_world / f"cache_{out}").iterdir())) == 1 and calls == [2]
    if upgraded:
        monkeypatch.setattr(cvr.diffusers, "__version__", "99.0.0")
    monkeypatch.setattr(cvr, "render_anchor_frames", lambda *a, **k: calls.append(len(a[1])) or original(*a, **k))
    np.testing.assert_array_equal(_render(render_world, out), whole)
    if upgraded:
        assert calls == [2, 2, 2, 1], "every clip rendered again"
    else:
        assert calls == [2, 2, 1], "the rerun renders clips 3-5 only"


def test_bad_render_inputs_are_named_and_nothing_is_written(render_world):
    short = render_world / "short.safetensors"
    write_embeddings(short, {"embeds": torch.zeros(2, 5, 6)}, IDS[:2])
    inputs = {
        "motion_frames": render_world / "motion_frames.h5",
        "anchor_truth": render_world / "embeds.safetensors",
        "anchor": short,
    }
    settings = dict(variant="full", source="decoded", anchor=ANCHOR, batch_size=2, device="cpu", dtype="float32")
    with pytest.raises(ValueError, match="short.safetensors: 3 clips are missing"):
        render_anchor(
            inputs,
            render_world / "t2i",
            render_world / "vae",
            settings,
            render_world / "bad.h5",
            render_world / "c_bad",
        )
    wide = render_world / "wide.safetensors"
    write_embeddings(wide, {"embeds": torch.zeros(5, 5, 9)}, IDS)
    inputs["anchor"] = wide
    with pytest.raises(ValueError, match="attends to 6-d tokens.*9-d"):
        render_anchor(
            inputs,
            render_world / "t2i",
            render_world / "vae",
            settings,
            render_world / "bad.h5",
            render_world / "c_bad",
        )
    with pytest.raises(ValueError, match="vae/config.json: a AutoencoderKL, not a UNet2DConditionModel"):
        render_anchor(
            {**inputs, "anchor": render_world / "decoded.safetensors"},
            render_world / "vae",
            render_world / "vae",
            settings,
            render_world / "bad.h5",
            render_world / "c_bad",
        )
    assert not (render_world / "bad.h5").exists()


# -- the video: AnimateDiff + SparseCtrl with the blurry-video initialisation ------------------------------------

ADAPTER = dict(motion_layers_per_block=1, motion_num_attention_heads=2, motion_max_seq_length=32)
VIDEO = dict(frames=4, steps=4, guidance=3.0, init_strength=0.6, conditioning_scale=1.0)


def test_every_attention_of_the_demo_generators_has_the_configured_head_size():
    """diffusers' UNet2DConditionModel reads `attention_head_dim` as a head count, and SparseControlNetModel.from_unet
    gives the motion modules 8 heads: the demo's knobs must reach every Attention as heads of the size they name."""
    settings = dict(block_out_channels=[16, 32, 64], layers_per_block=1, cross_attention_levels=2, norm_num_groups=8)
    unet = build_tiny_unet(settings | {"attention_head_dim": 16}, 4, 16, 12)
    adapter = build_tiny_motion_adapter(unet, ADAPTER | {"motion_max_seq_length": 24})  # not diffusers' 32
    controlnet = build_tiny_sparsectrl(unet, adapter)
    assert controlnet.config.motion_max_seq_length == 24
    motion_unet = UNetMotionModel.from_unet2d(unet, adapter)
    for model in (unet, controlnet, motion_unet):
        attentions = {name: m for name, m in model.named_modules() if isinstance(m, Attention)}
        assert attentions
        for name, attention in attentions.items():
            if "motion_modules" in name:
                assert attention.heads == ADAPTER["motion_num_attention_heads"], name
            else:  # spatial self- and cross-attention at 32 and 64 channels: 2 and 4 heads of 16
                assert attention.inner_dim // attention.heads == 16, name
    assert torch.equal(controlnet.conv_in.weight, unet.conv_in.weight)  # still a copy of the UNet's encoder
    assert torch.equal(
        controlnet.down_blocks[1].attentions[0].transformer_blocks[0].attn2.to_k.weight,
        unet.down_blocks[1].attentions[0].transformer_blocks[0].attn2.to_k.weight,
    )
    with pytest.raises(ValueError, match="attention_head_dim 24 must divide"):
        build_tiny_unet(settings | {"attention_head_dim": 24}, 4, 16, 12)


def test_interpolation_is_linear_between_the_motion_frames():
    frames = np.zeros((1, 2, 1, 1, 3), np.uint8)
    frames[0, 1] = 30
    assert interpolate_frames(frames, 4)[0, :, 0, 0, 0].tolist() == [0, 10, 20, 30]
    six = np.arange(6, dtype=np.uint8).reshape(1, 6, 1, 1, 1) * 30
    assert interpolate_frames(six, 16)[0, ::3, 0, 0, 0].tolist() == six[0, :, 0, 0, 0].tolist()  # 1 + 5 x 3


@pytest.fixture(scope="module")
def video_parts(render_world):
    """Random-weight MotionAdapter and SparseCtrl for render_world's t2i UNet (shapes and plumbing only)."""
    unet = load_unet(render_world / "t2i")
    torch.manual_seed(1)
    adapter = build_tiny_motion_adapter(unet, ADAPTER)
    with torch.no_grad():  # a fresh adapter's output projections are zero: make the motion modules do something
        for name, parameter in adapter.named_parameters():
            if "proj_out" in name:
                parameter.normal_(0, 0.1)
    adapter.save_pretrained(render_world / "adapter")
    controlnet = build_tiny_sparsectrl(unet, adapter)
    with torch.no_grad():  # and its zero convolutions, so that the condition reaches the UNet
        for name, parameter in controlnet.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding")):
                parameter.normal_(0, 0.1)
    controlnet.save_pretrained(render_world / "sparsectrl")
    return video_pipeline(
        render_world / "t2i", render_world / "adapter", render_world / "sparsectrl", render_world / "vae"
    )


def _video_inputs(count=2, seed=0):
    rng = np.random.default_rng(seed)
    motion = rng.integers(0, 256, (count, 3, 16, 16, 3), dtype=np.uint8)
    anchor = rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8)
    return motion, anchor, torch.from_numpy(rng.standard_normal((count, 5, 6)).astype(np.float32))


def test_the_explicit_loop_gives_the_pipelines_frames_at_init_strength_1(video_parts, monkeypatch):
    """At init_strength 1 the loop starts from the pipeline's noise and runs its schedule: the same final latents
    to float32 rounding, so the same frames but for a pixel that such rounding tips over a grey level. (The pixels
    of the condition frame are equal, but they reach the VAE encoder in another memory layout, and its convolution
    rounds them differently, by 7e-7. The pipeline encodes its condition frames by sampling the VAE posterior from
    the global RNG; the loop takes the posterior mean, and so does the pipeline here.)"""
    import diffusers.pipelines.animatediff.pipeline_animatediff_sparsectrl as sparsectrl_pipeline

    monkeypatch.setattr(
        sparsectrl_pipeline,
        "retrieve_latents",
        lambda output, generator=None, sample_mode="sample": output.latent_dist.mode(),
    )
    final_latents = []  # both decode through the pipeline's decode_latents: what each denoising loop ended with
    decode = video_parts.decode_latents
    monkeypatch.setattr(video_parts, "decode_latents", lambda x: final_latents.append(x.clone()) or decode(x))
    motion, anchor, prompts = _video_inputs(1)
    empty = torch.zeros(1, 5, 6)
    settings = {**VIDEO, "init_strength": 1.0}
    ours = render_videos(video_parts, motion, anchor, prompts, empty, settings, [11])
    theirs = video_parts(
        prompt_embeds=prompts,
        negative_prompt_embeds=empty,
        conditioning_frames=[Image.fromarray(anchor[0])],
        controlnet_frame_indices=[0],
        num_frames=VIDEO["frames"],
        height=16,
        width=16,
        num_inference_steps=VIDEO["steps"],
        guidance_scale=VIDEO["guidance"],
        generator=[torch.Generator().manual_seed(11)],
        output_type="pt",
    ).frames  # [1, F, 3, H, W] in [0, 1]
    assert ours.shape == (1, 4, 16, 16, 3)
    loop_latents, pipeline_latents = final_latents
    torch.testing.assert_close(loop_latents, pipeline_latents, rtol=0, atol=1e-5)  # latents of spread ~1
    expected = to_uint8(theirs[0].float() * 2 - 1)
    levels = np.abs(ours[0].astype(int) - expected.astype(int))
    assert levels.max() <= 1 and (levels > 0).mean() < 0.01


def test_a_video_strength_that_leaves_no_denoising_step_is_refused(video_parts):
    motion, anchor, prompts = _video_inputs(1)
    with pytest.raises(ValueError, match="init_strength 0.2 x steps 4 leaves no denoising step"):
        render_videos(video_parts, motion, anchor, prompts, torch.zeros(1, 5, 6), {**VIDEO, "init_strength": 0.2}, [0])


def test_video_frames_depend_on_their_cues_and_seed_not_on_the_batch(video_parts):
    motion, anchor, prompts = _video_inputs(3)
    empty = torch.zeros(1, 5, 6)
    together = render_videos(video_parts, motion, anchor, prompts, empty, VIDEO, [1, 2, 3])
    alone = render_videos(video_parts, motion[1:2], anchor[1:2], prompts[1:2], empty, VIDEO, [2])
    # The same noise and cues; only the float summation order differs with the batch (BLAS blocking): <= 1 level.
    assert np.abs(together[1].astype(int) - alone[0]).max() <= 1
    for changed in (
        (255 - motion[1:2], anchor[1:2], prompts[1:2]),  # the blurry-video initialisation
        (motion[1:2], 255 - anchor[1:2], prompts[1:2]),  # the anchor frame through SparseCtrl
        (motion[1:2], anchor[1:2], -prompts[1:2]),  # the holistic semantics
    ):
        assert (render_videos(video_parts, *changed, empty, VIDEO, [2]) != alone).any()
    assert (render_videos(video_parts, motion[1:2], anchor[1:2], prompts[1:2], empty, VIDEO, [5]) != alone).any()


@pytest.fixture()
def video_training_inputs(t2i_inputs):
    torch.manual_seed(0)
    build_tiny_unet(UNET, 4, 8, 6).save_pretrained(t2i_inputs / "t2i" / "unet")
    training_scheduler(T2I).save_pretrained(t2i_inputs / "t2i" / "scheduler")
    return t2i_inputs


def test_video_parts_train_only_their_own_weights_and_load_back_offline(video_training_inputs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = video_training_inputs
    trainable, original = {}, cvr.train

    def spy(model, *args, **kwargs):
        trainable[type(model).__name__] = [n for n, p in model.named_parameters() if p.requires_grad]
        return original(model, *args, **kwargs)

    monkeypatch.setattr(cvr, "train", spy)
    common = dict(min_snr_gamma=5.0, condition_drop=0.1, val_fraction=0.2)
    settings = dict(model=ADAPTER, **common, train=dict(epochs=2, batch_size=4, lr=0.002))
    inputs = (root / "latents.h5", root / "anchor.safetensors", root / "t2i")
    scores = train_motion_adapter(*inputs, settings, root / "adapter", root / "state_a")
    assert np.isfinite(scores["denoising"])
    assert trainable["UNetMotionModel"] and all("motion_modules" in n for n in trainable["UNetMotionModel"])
    adapter = load_motion_adapter(root / "adapter")
    assert adapter.config.block_out_channels == [8, 16]
    # A fresh adapter's output projections are zero (AnimateDiff starts as the image model): these learned.
    assert any(p.abs().sum() > 0 for n, p in adapter.named_parameters() if "proj_out" in n)

    settings = dict(**common, train=dict(epochs=1, batch_size=4, lr=0.002))
    scores = train_sparsectrl(*inputs, root / "adapter", settings, root / "ctrl", root / "state_c")
    assert np.isfinite(scores["denoising"])
    assert len(trainable["SparseControlNetModel"]) == len(list(load_sparsectrl(root / "ctrl").parameters()))
    controlnet = load_sparsectrl(root / "ctrl")
    assert controlnet.config.conditioning_channels == 4 and controlnet.config.use_simplified_condition_embedding
    assert controlnet.controlnet_cond_embedding.weight.abs().sum() > 0  # zero-initialised, then trained


def test_render_video_writes_the_evaluation_frames_and_resumes_after_a_kill(render_world, video_parts, monkeypatch):
    root = render_world
    _render(root, "anchor_for_video.h5")
    ids = read_clip_array(root / "motion_frames.h5", "frames")[1]
    inputs = {
        "motion_frames": root / "motion_frames.h5",
        "anchor": root / "anchor_for_video.h5",
        "holistic_truth": root / "embeds.safetensors",
        "holistic": root / "decoded.safetensors",
    }
    parts = {
        "t2i": root / "t2i",
        "motion_adapter": root / "adapter",
        "sparsectrl": root / "sparsectrl",
        "vae": root / "vae",
    }
    video = {**VIDEO, "frames": 6, "seed": 3, "eval_start": 2, "eval_step": 2}
    settings = dict(
        variant="full",
        holistic="decoded",
        video=video,
        clips=4,
        batch_size=2,
        device="cpu",
        dtype="float32",
    )

    whole = render_video(inputs, parts, settings, root / "whole.h5", root / "cache_whole")
    assert whole.shape == (4, 2, 16, 16, 3)  # frames 2 and 4 of 6 rendered; the first 4 clips
    written, written_ids = read_clip_array(root / "whole.h5", "frames")
    np.testing.assert_array_equal(written, whole)
    assert written_ids == ids[:4]

    original, calls = cvr.render_videos, []

    def killed_after_one_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(cvr, "render_videos", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        render_video(inputs, parts, settings, root / "video_resumed.h5", root / "cache_video_resumed")
    assert not (root / "video_resumed.h5").exists()
    monkeypatch.setattr(cvr, "render_videos", lambda *a, **k: calls.append(len(a[1])) or original(*a, **k))
    np.testing.assert_array_equal(
        render_video(inputs, parts, settings, root / "video_resumed.h5", root / "cache_video_resumed"), whole
    )
    assert calls == [2, 2], "the rerun renders the second batch only"
    wide = root / "wide_holistic.safetensors"
    write_embeddings(wide, {"embeds": torch.zeros(5, 5, 9)}, IDS)
    with pytest.raises(ValueError, match="attends to 6-d tokens.*9-d"):
        render_video({**inputs, "holistic": wide}, parts, settings, root / "bad_video.h5", root / "cache_bad_video")
    assert not (root / "bad_video.h5").exists()


def _input_dtypes(*layers) -> list[set]:
    """Per layer, the dtypes of every tensor it is called on from now on."""
    seen = [set() for _ in layers]
    for layer, dtypes in zip(layers, seen):
        layer.register_forward_hook(lambda module, args, output, dtypes=dtypes: dtypes.add(args[0].dtype))
    return seen


# Grey levels (mean, largest) between a half-precision render and float32's: 11 and 8 mantissa bits. Measured on
# the models below: float16 0.11 / 1, bfloat16 0.8 / 10.
HALF_TOLERANCE = {"float16": (0.5, 4), "bfloat16": (2, 24)}


@pytest.mark.parametrize("dtype", list(HALF_TOLERANCE))
def test_the_gpus_half_precision_renders_run_in_it_from_loading_to_frames(
    render_world, video_parts, dtype, half_precision_on_cpu
):
    """What a GPU run with render.dtype float16 / bfloat16 executes, run on the CPU: the loaders give half-precision
    models, each model's first layer sees only that precision at every step, and the frames are the float32 render's
    but for a few grey levels (random-weight models: the plumbing, not the quality)."""
    half = getattr(torch, dtype)
    root = render_world
    motion, anchor, prompts = _video_inputs(2)
    empty = torch.zeros(1, 5, 6)

    pipe = video_pipeline(root / "t2i", root / "adapter", root / "sparsectrl", root / "vae", "cpu", dtype)
    assert {pipe.unet.dtype, pipe.controlnet.dtype, pipe.vae.dtype} == {half}
    seen = _input_dtypes(pipe.unet.conv_in, pipe.controlnet.conv_in, pipe.vae.encoder.conv_in, pipe.vae.decoder.conv_in)
    videos = render_videos(pipe, motion, anchor, prompts, empty, VIDEO, [1, 2])
    assert seen == [{half}] * 4
    reference = render_videos(video_parts, motion, anchor, prompts, empty, VIDEO, [1, 2])
    levels = np.abs(videos.astype(int) - reference.astype(int))
    mean, most = HALF_TOLERANCE[dtype]
    assert videos.shape == reference.shape and levels.mean() < mean and levels.max() <= most, levels.max()

    pipe = anchor_pipeline(root / "t2i", root / "vae", "cpu", dtype)
    seen = _input_dtypes(pipe.unet.conv_in, pipe.vae.encoder.conv_in, pipe.vae.decoder.conv_in)
    frames = render_anchor_frames(pipe, motion[:, 0], prompts, empty, ANCHOR, [1, 2])
    assert seen == [{half}] * 3
    full_precision = anchor_pipeline(root / "t2i", root / "vae")
    reference = render_anchor_frames(full_precision, motion[:, 0], prompts, empty, ANCHOR, [1, 2])
    levels = np.abs(frames.astype(int) - reference.astype(int))
    assert levels.mean() < mean and levels.max() <= most, levels.max()
