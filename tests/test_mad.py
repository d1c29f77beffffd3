"""MAD and its stage: shapes and gradient flow, the tri-path attention's paths, the contrastive term against its
closed form, the VAE backends (the demo VAE loads back through from_pretrained), exact resume of training, every
variant of decode_mad, the pixel metrics against scikit-image and numpy, and the bad inputs named by file."""

import json
import logging
import math

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from skimage.metrics import peak_signal_noise_ratio

from semvideo_core.backends.vae import build_demo_vae, decode_latents, encode_frames, load_vae
from semvideo_core.io.clip_arrays import read_clip_array, write_clip_array
from semvideo_core.io.embeddings import write_embeddings
from semvideo_core.metrics.pixel import motion_energy, pixel_correlation, psnr, ssim
from semvideo_core.models.losses import MADLossWeights, info_nce, mad_loss
from semvideo_core.models.mad import MAD, MADConfig, init_shared_space
from semvideo_core.models.ridge import fit_ridge, predict_ridge
from semvideo_core.stages.mad import (
    MADSubject,
    calibrate_output_scale,
    decode_mad,
    encode_latents,
    finetune_mad,
    load_mad,
    train_mad,
    train_vae,
)
from semvideo_core.training import TrainingStopped

SHAPE = dict(frames=3, channels=2, height=4, width=4, text_tokens=5, text_dim=8)
TINY = dict(hidden=16, patch=2, dim=16, depth=1, heads=2, dropout=0.0)


def tiny_mad(**overrides):
    torch.manual_seed(0)
    return MAD(MADConfig(voxels={"subject1": 30, "subject2": 40}, **SHAPE, **(TINY | overrides)))


def test_shapes_and_gradient_flow():
    model = tiny_mad()
    voxels, motion, targets = torch.randn(6, 40), torch.randn(6, 5, 8), torch.randn(6, 3, 2, 4, 4)
    predicted = model(voxels, "subject2", motion)
    assert predicted.shape == (6, 3, 2, 4, 4)
    loss, parts = mad_loss(predicted, targets, model.latent_mean, MADLossWeights())
    loss.backward()
    assert set(parts) == {"l1", "frame_nce", "clip_nce"}
    for name, parameter in model.named_parameters():
        if name.startswith("projection.maps.subject1"):
            assert parameter.grad is None  # another subject's projection is untouched
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_semantic_path_is_live():
    model = tiny_mad().eval()
    voxels = torch.randn(4, 30)
    first, second = model(voxels, "subject1", torch.randn(4, 5, 8)), model(voxels, "subject1", torch.randn(4, 5, 8))
    assert (first - second).abs().max() > 1e-6


def _perturb(module):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter))


def test_the_output_scale_is_the_clipped_least_squares_factor_of_the_held_out_clips():
    model = tiny_mad().eval()
    _perturb(model.head)
    model.latent_mean.normal_()
    voxels, motion = torch.randn(6, 2, 30), torch.randn(6, 5, 8)
    with torch.no_grad():
        deviation = model(voxels.mean(1), "subject1", motion) - model.latent_mean  # [6, T, C, h, w]
    ids = [f"seg1_{k}" for k in range(1, 7)]
    for factors, expected in (([0.4, -1.0], [0.4, 0.0]), ([2.5, 0.7], [1.0, 0.7])):
        targets = model.latent_mean + torch.tensor(factors).view(1, 1, 2, 1, 1) * deviation
        targets[:3] = 10 * torch.randn_like(targets[:3])  # training clips: must not count
        subject = MADSubject("subject1", voxels, targets, motion, ids, torch.zeros(0, 30), [])
        scale = calibrate_output_scale(model, subject, ids[3:])
        np.testing.assert_allclose(scale, expected, atol=1e-5)
        with torch.no_grad():
            shrunk = model(voxels.mean(1), "subject1", motion) - model.latent_mean
        torch.testing.assert_close(shrunk, torch.tensor(expected).view(1, 1, 2, 1, 1) * deviation, atol=1e-5, rtol=0)
    assert calibrate_output_scale(model, subject, []) == [1.0, 1.0]


def test_the_ridge_start_of_the_shared_space_is_scikit_learns_ridge_on_the_latents():
    # hidden 32 >= 30 clips - 1: the principal components span every deviation, so the linear path must give exactly
    # what scikit-learn's ridge from the voxels to the flattened latents predicts, with the alpha it chooses there
    model = tiny_mad(hidden=32, linear_readout=True).eval()
    with torch.no_grad():
        model.head.weight.zero_()  # the attention path adds nothing
    rng = np.random.default_rng(0)
    voxels = rng.normal(size=(30, 30))
    # three strong components the voxels predict and 26 weak ones they do not: leave-one-out on the latents wants
    # little shrinkage (0.1), on standardised component scores, mostly noise, much more (1000)
    signal = voxels[:, :3] @ rng.normal(size=(3, 96))
    latents = torch.from_numpy((signal + 0.3 * rng.normal(size=(30, 96))).reshape(30, 3, 2, 4, 4))
    model.latent_mean.copy_(latents.mean(0))
    alphas = [0.1, 1.0, 10.0, 100.0, 1000.0]
    record = init_shared_space(model, {"subject1": voxels}, latents.float(), alphas)
    fitted, scaling = fit_ridge(voxels, latents.flatten(1).numpy(), alphas)
    assert record["alpha_subject1"] == fitted.alpha_ and record["variance_explained"] > 0.999
    expected = predict_ridge(fitted, scaling, voxels[:5])
    with torch.no_grad():
        predicted = model(torch.from_numpy(voxels[:5]).float(), "subject1", torch.randn(5, 5, 8)).flatten(1)
    np.testing.assert_allclose(predicted.numpy(), expected, atol=1e-4)


def test_zero_lambdas_leave_only_the_cross_path():
    """With lambda_spat = lambda_temp = 0, the self-attention weights no longer matter; the cross-attention's do."""
    model = tiny_mad(lambda_spatial=0.0, lambda_temporal=0.0).eval()
    voxels, motion = torch.randn(4, 30), torch.randn(4, 5, 8)
    before = model(voxels, "subject1", motion)
    _perturb(model.blocks[0].spatial)
    _perturb(model.blocks[0].temporal)
    torch.testing.assert_close(model(voxels, "subject1", motion), before)
    _perturb(model.blocks[0].cross)
    assert (model(voxels, "subject1", motion) - before).abs().max() > 1e-6
    with_paths = tiny_mad().eval()  # the default lambdas: the self-attention weights do matter
    before = with_paths(voxels, "subject1", motion)
    _perturb(with_paths.blocks[0].temporal)
    assert (with_paths(voxels, "subject1", motion) - before).abs().max() > 1e-6


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_info_nce_matches_its_closed_form(temperature):
    """Orthonormal, perfectly matched rows: each row's logits are 1/tau on the diagonal and 0 elsewhere, so the loss
    in both directions is log(1 + (n - 1) exp(-1 / tau))."""
    n = 4
    rows = torch.eye(n, 6, dtype=torch.float64)
    expected = math.log(1 + (n - 1) * math.exp(-1 / temperature))
    assert info_nce(rows * 3.0, rows, temperature).item() == pytest.approx(expected, rel=1e-5)
    swapped = rows[[1, 0, 2, 3]]  # rows 0 and 1 swapped: each one's own logit is 0, another's 1 / tau
    two_wrong = (2 * math.log(math.exp(1 / temperature) + n - 1) + 2 * expected) / n
    assert info_nce(swapped, rows, temperature).item() == pytest.approx(two_wrong, rel=1e-5)


def test_pixel_metrics_against_independent_references():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (2, 3, 16, 16, 3)).astype(np.uint8)
    predicted = np.clip(target.astype(int) + rng.integers(-20, 21, target.shape), 0, 255).astype(np.uint8)
    reference = [
        peak_signal_noise_ratio(t, p, data_range=255)
        for t, p in zip(target.reshape(-1, 16, 16, 3), predicted.reshape(-1, 16, 16, 3))
    ]
    np.testing.assert_allclose(psnr(predicted, target).ravel(), reference)
    pearson = [np.corrcoef(p.ravel(), t.ravel())[0, 1] for p, t in zip(predicted.reshape(6, -1), target.reshape(6, -1))]
    np.testing.assert_allclose(pixel_correlation(predicted, target).ravel(), pearson)
    assert ssim(target, target).shape == (2, 3) and np.all(ssim(target, target) == 1)
    assert np.all(ssim(predicted, target) < 1)
    steps = np.zeros((1, 3, 2, 2, 3))
    steps[0, 1], steps[0, 2] = 10, 40  # changes of 10 and 30 per pixel
    assert motion_energy(steps)[0] == pytest.approx(20)


# -- the VAE -----------------------------------------------------------------------------------------------------


def save_demo_vae(path):
    torch.manual_seed(0)
    vae = build_demo_vae([8, 16], 1, 4, 4, 16)  # random weights: a test of loading only
    vae.save_pretrained(path)
    return vae


def test_the_demo_vae_loads_back_through_from_pretrained(tmp_path):
    vae = save_demo_vae(tmp_path / "vae").eval()
    loaded = load_vae(tmp_path / "vae")
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    latents = encode_frames(loaded, frames)
    assert latents.shape == (3, 4, 8, 8)
    with torch.no_grad():
        expected = vae.encode(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1).latent_dist.mean
    torch.testing.assert_close(latents, expected * vae.config.scaling_factor)
    assert decode_latents(loaded, latents).shape == (3, 16, 16, 3)
    pipeline = tmp_path / "pipeline"  # a diffusers pipeline folder: the VAE in vae/
    save_demo_vae(pipeline / "vae")
    assert load_vae(pipeline).config.latent_channels == 4


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_vae_runs_in_the_gpus_half_precision_and_hands_back_float32(tmp_path, dtype, half_precision_on_cpu):
    """latents.dtype float16 / bfloat16 as a GPU runs it (on the CPU here): the VAE loads in that precision, and
    its latents come back as float32 (the stages store them as float16 either way), close to float32's."""
    save_demo_vae(tmp_path / "vae")
    half, full = load_vae(tmp_path / "vae", "cpu", dtype), load_vae(tmp_path / "vae")
    assert half.dtype == getattr(torch, dtype) and full.dtype == torch.float32
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    latents, expected = encode_frames(half, frames), encode_frames(full, frames)
    assert latents.dtype == torch.float32
    torch.testing.assert_close(latents, expected, rtol=0, atol=0.05 * expected.abs().max().item())
    levels = np.abs(decode_latents(half, expected).astype(int) - decode_latents(full, expected).astype(int))
    assert levels.max() <= {"float16": 2, "bfloat16": 12}[dtype], levels.max()  # 11 and 8 mantissa bits


def test_a_vae_folder_without_config_is_named(tmp_path):
    save_demo_vae(tmp_path / "vae")
    (tmp_path / "vae" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"vae.*config\.json"):
        load_vae(tmp_path / "vae")


def write_clips(path, frames, ids):
    write_clip_array(path, "frames", frames, ids)


def test_train_vae_learns_and_saves_a_loadable_autoencoder(tmp_path):
    """A few epochs on flat-colour frames: held-out PSNR above the best constant frame's, and the saved folder loads
    through load_vae with the fitted scaling factor."""
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (40, 1, 1, 1, 3))
    frames = np.broadcast_to(colours, (40, 2, 16, 16, 3)).astype(np.uint8).copy()
    ids = [f"seg1_{j + 1}" for j in range(40)]
    write_clips(tmp_path / "train.h5", frames, ids)
    settings = {
        "size": 16,
        "crop": 8,
        "kl_weight": 1e-6,
        "mix_weight": 1.0,
        "val_fraction": 0.2,
        "model": {"block_out_channels": [8, 8], "layers_per_block": 1, "latent_channels": 4, "norm_num_groups": 4},
        "train": {"epochs": 20, "batch_size": 8, "lr": 0.01},
    }
    scores = train_vae(tmp_path / "train.h5", settings, tmp_path / "vae", tmp_path / "state")
    constant = psnr(np.full_like(frames, int(frames.mean())), frames).mean()
    assert scores["psnr"] > constant + 1  # better than the best constant frame: it learned the colours
    vae = load_vae(tmp_path / "vae")
    assert vae.config.scaling_factor != pytest.approx(0.18215)  # fitted to the data, not SD's
    record = json.loads((tmp_path / "vae" / "training.json").read_text())
    assert record["held_out"]["psnr"] == pytest.approx(scores["psnr"])
    assert not (tmp_path / "state" / "checkpoint.safetensors").exists()

    encode_latents(
        tmp_path / "train.h5",
        tmp_path / "vae",
        {"size": 16, "batch_size": 8, "device": "cpu", "dtype": "float16"},
        tmp_path / "latents.h5",
    )
    latents, clip_ids = read_clip_array(tmp_path / "latents.h5", "latents")
    assert latents.dtype == np.float16 and latents.shape == (40, 2, 4, 8, 8) and clip_ids == ids
    assert latents.astype(np.float64).std() == pytest.approx(1.0, abs=0.05)  # the fitted factor: unit variance


# -- MAD training and decoding -----------------------------------------------------------------------------------


@pytest.fixture
def mad_dataset(tmp_path):
    """Two subjects; 40 training and 10 test clips with latents [3, 2, 4, 4] and motion tokens [5, 8]; latents and
    fMRI are both linear in 8 hidden factors of each clip."""
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(50, 8))
    latents = (factors @ rng.normal(size=(8, 96))).reshape(50, 3, 2, 4, 4).astype(np.float32)
    motion = rng.normal(size=(50, 5, 8)).astype(np.float32)
    train_ids = [f"seg1_{j + 1}" for j in range(40)]
    test_ids = [f"test1_{j + 1}" for j in range(10)]
    weights = rng.normal(size=(8, 40))
    paths = []
    for name, voxels in (("subject1", 30), ("subject2", 40)):
        clean = factors @ weights[:, :voxels]
        with h5py.File(tmp_path / f"{name}.h5", "w") as h5:
            h5["voxel_index"] = np.arange(voxels)
            h5["train"] = np.stack([clean[:40] + 0.3 * rng.normal(size=(40, voxels)) for _ in range(2)], 1)
            h5["test"] = clean[40:] + 0.1 * rng.normal(size=(10, voxels))
            h5.create_dataset("train_clip_id", data=train_ids, dtype=h5py.string_dtype())
            h5.create_dataset("test_clip_id", data=test_ids, dtype=h5py.string_dtype())
        paths.append(str(tmp_path / f"{name}.h5"))
    write_clip_array(tmp_path / "train_latents.h5", "latents", latents[:40].astype(np.float16), train_ids)
    write_clip_array(tmp_path / "test_latents.h5", "latents", latents[40:].astype(np.float16), test_ids)
    empty = {"empty": torch.zeros(1, 5, 8)}
    write_embeddings(
        tmp_path / "motion.safetensors", {"embeds": torch.from_numpy(motion)}, train_ids + test_ids, constants=empty
    )
    return {
        "fmri": paths,
        "motion": str(tmp_path / "motion.safetensors"),
        "train_ids": train_ids,
        "test_ids": test_ids,
        "dir": tmp_path,
    }


PHASE = dict(epochs=3, batch_size=16, lr=3e-3, checkpoint_every=5)


def mad_settings(source="truth", epochs=3):
    return {
        "model": TINY,
        "loss": {},
        "motion": {"source": source, "noise": 0.5, "drop": 0.2},
        "pretrain": PHASE | {"epochs": epochs},
        "finetune": PHASE | {"epochs": 2},
        "val_fraction": 0.1,
        "val_block": 2,
        "select_best": True,
        "calibrate": True,
        "init": "random",
        "ridge_alphas": [1.0, 100.0],
    }


def same_weights(first, second) -> bool:
    a, b = load_file(str(first)), load_file(str(second))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("source", ["truth", "noisy_truth"])
def test_a_killed_mad_training_resumes_to_identical_weights(mad_dataset, tmp_path, source, caplog):
    d, latents = mad_dataset, str(mad_dataset["dir"] / "train_latents.h5")
    settings = mad_settings(source)
    train_mad(d["fmri"], latents, d["motion"], settings, tmp_path / "whole.safetensors", tmp_path / "whole_state")
    with pytest.raises(TrainingStopped):  # mid-epoch, two steps after the checkpoint at step 5
        train_mad(
            d["fmri"],
            latents,
            d["motion"],
            settings,
            tmp_path / "never.safetensors",
            tmp_path / "state",
            stop_after_steps=7,
        )
    assert not (tmp_path / "never.safetensors").exists()
    other_interval = settings | {"pretrain": settings["pretrain"] | {"checkpoint_every": 2}}  # how often it saves only
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"):
        train_mad(d["fmri"], latents, d["motion"], other_interval, tmp_path / "resumed.safetensors", tmp_path / "state")
    assert "resuming at step 7" in caplog.text
    assert same_weights(tmp_path / "whole.safetensors", tmp_path / "resumed.safetensors")
    rows = (tmp_path / "state" / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and "val_latent_corr" in rows[0]


@pytest.fixture
def trained(mad_dataset, tmp_path):
    d, latents = mad_dataset, str(mad_dataset["dir"] / "train_latents.h5")
    train_mad(d["fmri"], latents, d["motion"], mad_settings(), tmp_path / "pre.safetensors", tmp_path / "pre")
    finetune_mad(
        tmp_path / "pre.safetensors",
        d["fmri"][0],
        latents,
        d["motion"],
        mad_settings(),
        tmp_path / "subject1.safetensors",
        tmp_path / "ft",
    )
    vae_dir = d["dir"] / "vae"
    torch.manual_seed(0)
    build_demo_vae([8, 8], 1, 2, 4, 8).save_pretrained(vae_dir)  # latents [2, 4, 4] -> frames 8 x 8 (random weights)
    return d, tmp_path / "subject1.safetensors", vae_dir


DECODE = {"batch_size": 4, "device": "cpu", "dtype": "float16", "ridge_alphas": [1.0, 100.0]}


def test_every_variant_decodes_every_test_clip(trained, tmp_path):
    d, model, vae = trained
    inputs = {
        "full": {"model": model, "sad_motion": d["motion"]},
        "no_motion": {"model": model, "motion": d["motion"]},
        "ridge": {"train_latents": d["dir"] / "train_latents.h5"},
        "oracle": {"test_latents": d["dir"] / "test_latents.h5"},
    }
    for variant, given in inputs.items():
        out = tmp_path / variant
        fmri = None if variant == "oracle" else d["fmri"][0]  # the oracle reads no subject's fMRI
        decode_mad(variant, fmri, vae, given, DECODE, out / "latents.h5", out / "frames.h5")
        frames, ids = read_clip_array(out / "frames.h5", "frames")
        latents, _ = read_clip_array(out / "latents.h5", "latents")
        assert ids == d["test_ids"] and frames.shape == (10, 3, 8, 8, 3) and frames.dtype == np.uint8
        assert latents.shape == (10, 3, 2, 4, 4) and latents.dtype == np.float16
    oracle, _ = read_clip_array(tmp_path / "oracle" / "latents.h5", "latents")
    truth, _ = read_clip_array(d["dir"] / "test_latents.h5", "latents")
    np.testing.assert_array_equal(oracle, truth)
    full, _ = read_clip_array(tmp_path / "full" / "latents.h5", "latents")
    no_motion, _ = read_clip_array(tmp_path / "no_motion" / "latents.h5", "latents")
    assert np.abs(full.astype(float) - no_motion).max() > 0  # the null condition changes the decode
    ridge, _ = read_clip_array(tmp_path / "ridge" / "latents.h5", "latents")
    assert np.corrcoef(ridge.ravel(), truth.ravel())[0, 1] > 0.8  # a linear world: ridge recovers it


def test_missing_clip_ids_are_named_and_nothing_is_written(mad_dataset, tmp_path):
    d = mad_dataset
    short = tmp_path / "short_latents.h5"
    latents, ids = read_clip_array(d["dir"] / "train_latents.h5", "latents")
    write_clip_array(short, "latents", latents[:-3], ids[:-3])
    with pytest.raises(ValueError, match=r"short_latents\.h5: 3 clips are missing"):
        train_mad(d["fmri"], short, d["motion"], mad_settings(), tmp_path / "m.safetensors", tmp_path / "s")
    few = tmp_path / "few_motion.safetensors"
    write_embeddings(
        few, {"embeds": torch.zeros(30, 5, 8)}, d["train_ids"][:30], constants={"empty": torch.zeros(1, 5, 8)}
    )
    with pytest.raises(ValueError, match=r"few_motion\.safetensors: 10 clips have no motion embedding"):
        train_mad(
            d["fmri"], d["dir"] / "train_latents.h5", few, mad_settings(), tmp_path / "m.safetensors", tmp_path / "s"
        )
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "m.json").exists()


def test_latent_and_motion_shapes_that_disagree_with_the_model_are_named(trained, tmp_path):
    d, model, vae = trained
    wrong = tmp_path / "wide_latents.h5"
    write_clip_array(wrong, "latents", np.zeros((40, 3, 2, 8, 8), np.float16), d["train_ids"])
    with pytest.raises(ValueError, match=r"wide_latents\.h5: latents of shape \(3, 2, 8, 8\).*expects \(3, 2, 4, 4\)"):
        finetune_mad(
            tmp_path / "pre.safetensors",
            d["fmri"][0],
            wrong,
            d["motion"],
            mad_settings(),
            tmp_path / "bad.safetensors",
            tmp_path / "bad_state",
        )
    assert not (tmp_path / "bad.safetensors").exists()
    tokens = tmp_path / "long_tokens.safetensors"
    write_embeddings(tokens, {"embeds": torch.zeros(10, 7, 8)}, d["test_ids"])
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"long_tokens\.safetensors: motion tokens \(7, 8\).*expects \(5, 8\)"):
        decode_mad(
            "full", d["fmri"][0], vae, {"model": model, "sad_motion": tokens}, DECODE, out / "l.h5", out / "f.h5"
        )
    assert not (out / "l.h5").exists() and not (out / "f.h5").exists()


def test_a_vae_whose_latents_disagree_with_the_model_is_named(trained, tmp_path):
    d, model, _ = trained
    other = tmp_path / "other_vae"
    build_demo_vae([8, 8], 1, 3, 4, 8).save_pretrained(other)  # 3 latent channels; the model predicts 2
    with pytest.raises(ValueError, match=r"other_vae.*3 latent channels.*2"):
        decode_mad(
            "full",
            d["fmri"][0],
            other,
            {"model": model, "sad_motion": d["motion"]},
            DECODE,
            tmp_path / "l.h5",
            tmp_path / "f.h5",
        )
    assert not (tmp_path / "l.h5").exists()


def test_load_mad_names_a_file_without_its_config(trained):
    _, model, _ = trained
    model.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match=r"subject1\.safetensors: not a MAD model"):
        load_mad(model)
