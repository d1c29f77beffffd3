"""SAD and its stage: shapes and gradient flow, SoftCLIP against an independent oracle, the diffusion schedule
against its closed form, exact resume of training and the identity of a training job, decoding of every test clip,
the ridge baseline, retrieval scoring, and the text-encoder backends."""

import importlib
import json
import logging
import math
import sys

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from semvideo_core.backends.text import load_text_encoder, save_tiny_clip
from semvideo_core.io.captions import write_captions
from semvideo_core.io.embeddings import load_embeddings, write_embeddings
from semvideo_core.metrics.regression import feature_correlation, r_squared
from semvideo_core.metrics.retrieval import chance_top1, top1_accuracy
from semvideo_core.models.losses import SADLossWeights, sad_loss, soft_clip_loss
from semvideo_core.models.sad import SAD, SADConfig, training_scheduler
from semvideo_core.stages.sad import decode_sad, embed_text, finetune_sad, load_model, ridge, save_model, train_sad
from semvideo_core.training import TrainConfig, TrainingStopped, train

TINY = dict(
    hidden=16,
    mlp_blocks=2,
    dropout=0.1,
    refine_width=16,
    refine_depth=1,
    refine_heads=2,
    diffusion_steps=10,
)
DECODE = {"refine": True, "steps": 3, "strength": 0.5, "seed": 0}


def tiny_sad(voxels=None):
    torch.manual_seed(0)
    return SAD(SADConfig(voxels=voxels or {"subject1": 30, "subject2": 40}, tokens=5, dim=8, **TINY))


def test_shapes_and_gradient_flow():
    model = tiny_sad()
    voxels, targets = torch.randn(6, 40), torch.randn(6, 5, 8)
    assert model.backbone(voxels, "subject2").shape == (6, 5, 8)
    loss, parts = sad_loss(model, voxels, "subject2", targets, SADLossWeights())
    loss.backward()
    assert set(parts) == {"mse", "soft_clip", "refine"}
    for name, parameter in model.named_parameters():
        if name.startswith("projection.maps.subject1"):
            assert parameter.grad is None  # another subject's projection is untouched
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert model.decode(voxels, "subject2", generator=torch.Generator().manual_seed(0)).shape == (6, 5, 8)


def test_attention_dropout_is_its_own_knob():
    """`attention_dropout` alone decides whether the Refineformer's attention drops weights while training;
    `dropout` stays in the shared MLP."""
    noisy, condition, t = torch.randn(4, 5, 8), torch.randn(4, 5, 8), torch.tensor([1, 3, 5, 7])
    outputs = {}
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        refine = SAD(SADConfig(voxels={"subject1": 30}, tokens=5, dim=8, **{**TINY, "attention_dropout": p})).refiner
        refine.train()
        outputs[p] = [refine(noisy, t, condition) for _ in range(2)]
    assert all(block.drop.p == TINY["dropout"] for block in tiny_sad().mlp.blocks)  # the MLP keeps `dropout`
    assert torch.equal(*outputs[0.0])  # the MLP's dropout (0.1 here) is not in the Refineformer
    assert not torch.allclose(*outputs[0.5])
    assert SADConfig(voxels={}, tokens=1, dim=1).attention_dropout == 0.0


def test_a_model_saved_before_attention_dropout_loads_with_its_old_regularisation(tmp_path):
    """Until the knob existed, the Refineformer dropped attention weights at `dropout`: a model saved then (no
    `attention_dropout` in its JSON) loads with its dropout there, so a fine-tune of it trains as before."""
    save_model(tiny_sad(), tmp_path / "old.safetensors", {})
    config_file = tmp_path / "old.json"
    saved = json.loads(config_file.read_text())
    del saved["sad"]["attention_dropout"]
    config_file.write_text(json.dumps(saved))
    model, _ = load_model(tmp_path / "old.safetensors")
    assert model.config.attention_dropout == TINY["dropout"] == 0.1
    assert model.refiner.blocks[0].attention_dropout == 0.1


def test_training_schedule_is_the_cosine_closed_form():
    """alpha-bar of the cosine schedule (Nichol & Dhariwal 2021): f(t) / f(0), f(t) = cos((t/T + s)/(1 + s) pi/2)^2,
    at the end of step t; the betas are clipped at 0.999 only in the last steps, where the closed form is left."""
    steps, s = 100, 0.008
    f = [math.cos(((t / steps) + s) / (1 + s) * math.pi / 2) ** 2 for t in range(steps + 1)]
    closed = np.array([f[t + 1] / f[0] for t in range(steps)])
    alpha_bar = training_scheduler(steps).alphas_cumprod.double().numpy()
    np.testing.assert_allclose(alpha_bar[:95], closed[:95], rtol=1e-5, atol=1e-6)


class Recorder(torch.nn.Module):
    """A perfect denoiser: always predicts the same clean tokens, and records the timesteps it is asked at."""

    def __init__(self, clean):
        super().__init__()
        self.clean, self.times = clean, []

    def forward(self, noisy, t, condition):
        self.times.append(sorted(set(t.tolist())))
        return self.clean.expand_as(noisy)


@pytest.mark.parametrize(
    "steps, strength, times", [(10, 0.3, [29, 19, 9]), (10, 1.0, list(range(99, 0, -10))), (4, 0.5, [49, 24])]
)
def test_ddim_refinement_runs_the_schedule_tail_and_lands_on_the_clean_estimate(steps, strength, times):
    model = SAD(SADConfig(voxels={"s": 3}, tokens=2, dim=3, **{**TINY, "diffusion_steps": 100}))
    clean = torch.randn(1, 2, 3)
    model.refiner = Recorder(clean)
    condition = torch.randn(4, 2, 3)
    refined = model.sample(condition, steps, strength, torch.Generator().manual_seed(0))
    assert [
        t for (t,) in model.refiner.times
    ] == times  # trailing spacing over 100 steps, the last round(steps x strength)
    torch.testing.assert_close(refined, clean.expand_as(refined), rtol=0, atol=1e-6)  # alpha-bar 1 at the end


def soft_clip_oracle(predictions, targets, temperature):
    """SoftCLIP written out loop by loop in float64 numpy."""
    p = predictions.reshape(len(predictions), -1).astype(np.float64)
    t = targets.reshape(len(targets), -1).astype(np.float64)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    n = len(p)

    def softmax(row):
        e = np.exp(row - row.max())
        return e / e.sum()

    def log_softmax(row):
        return row - row.max() - np.log(np.exp(row - row.max()).sum())

    forward = backward = 0.0
    for i in range(n):
        labels = softmax(np.array([t[i] @ t[j] for j in range(n)]) / temperature)
        forward -= (log_softmax(np.array([p[i] @ t[j] for j in range(n)]) / temperature) * labels).sum()
        backward -= (log_softmax(np.array([p[j] @ t[i] for j in range(n)]) / temperature) * labels).sum()
    return (forward / n + backward / n) / 2


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_soft_clip_matches_an_independent_oracle(temperature):
    rng = np.random.default_rng(0)
    predictions, targets = rng.normal(size=(7, 3, 4)), rng.normal(size=(7, 3, 4))
    ours = soft_clip_loss(torch.from_numpy(predictions), torch.from_numpy(targets), temperature).item()
    assert ours == pytest.approx(soft_clip_oracle(predictions, targets, temperature), rel=1e-10)


def write_subject(path, name, n_train, n_test, voxels, weights, embeds, rng, reps=2):
    """fMRI that is a noisy linear function of the flattened target embeddings."""

    def responses(targets):
        return targets.reshape(len(targets), -1) @ weights[:, :voxels]

    train_ids = [f"seg1_{j + 1}" for j in range(n_train)]
    test_ids = [f"test1_{j + 1}" for j in range(n_test)]
    clean = responses(embeds[:n_train])
    with h5py.File(path, "w") as h5:
        h5["voxel_index"] = np.arange(voxels)
        h5["train"] = np.stack([clean + 0.3 * rng.normal(size=clean.shape) for _ in range(reps)], 1).astype(np.float32)
        h5["test"] = (responses(embeds[n_train:]) + 0.1 * rng.normal(size=(n_test, voxels))).astype(np.float32)
        h5.create_dataset("train_clip_id", data=train_ids, dtype=h5py.string_dtype())
        h5.create_dataset("test_clip_id", data=test_ids, dtype=h5py.string_dtype())
    return train_ids + test_ids


@pytest.fixture
def small_dataset(tmp_path):
    """Two subjects, 40 training and 10 test clips, targets [5 tokens, 8 dims], fMRI linear in the targets."""
    rng = np.random.default_rng(0)
    embeds = rng.normal(size=(50, 5, 8)).astype(np.float32)
    weights = rng.normal(size=(40, 40))
    paths = []
    for name, voxels in (("subject1", 30), ("subject2", 40)):
        ids = write_subject(tmp_path / f"{name}.h5", name, 40, 10, voxels, weights, embeds, rng)
        paths.append(str(tmp_path / f"{name}.h5"))
    write_embeddings(tmp_path / "anchor.safetensors", {"embeds": torch.from_numpy(embeds)}, ids)
    return paths, str(tmp_path / "anchor.safetensors"), ids


def pretrain_settings(epochs=3):
    return {"model": TINY, "loss": {}, "pretrain": PHASE | {"epochs": epochs}, "val_fraction": 0.1}


PHASE = dict(epochs=3, batch_size=16, lr=3e-3, checkpoint_every=5)
FINETUNE = {"loss": {}, "finetune": PHASE | {"epochs": 2}}


def same_weights(first, second) -> bool:
    a, b = load_file(str(first)), load_file(str(second))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_training_resumes_to_identical_weights(small_dataset, tmp_path):
    fmri, embeds, _ = small_dataset
    train_sad(fmri, embeds, pretrain_settings(), tmp_path / "whole.safetensors", tmp_path / "whole_state")
    with pytest.raises(TrainingStopped):  # stopped after 7 steps, mid-epoch and after a checkpoint at step 5
        train_sad(
            fmri, embeds, pretrain_settings(), tmp_path / "never.safetensors", tmp_path / "state", stop_after_steps=7
        )
    assert (tmp_path / "state" / "checkpoint.safetensors").exists() and not (tmp_path / "never.safetensors").exists()
    train_sad(fmri, embeds, pretrain_settings(), tmp_path / "resumed.safetensors", tmp_path / "state")
    assert same_weights(tmp_path / "whole.safetensors", tmp_path / "resumed.safetensors")
    rows = (tmp_path / "state" / "log.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and "val_top1" in rows[0]
    assert not (tmp_path / "state" / "checkpoint.safetensors").exists()  # a finished job leaves nothing to resume


def test_a_finetune_never_resumes_from_other_starting_weights(small_dataset, tmp_path):
    """Subject 2's data changes: pretraining reruns and gives new weights; subject 1's fine-tune (same data, same
    settings, same state folder) must train from the new weights, not reuse the old job's state."""
    fmri, embeds, _ = small_dataset
    train_sad(fmri, embeds, pretrain_settings(), tmp_path / "pre_a.safetensors", tmp_path / "pre")
    finetune_sad(
        tmp_path / "pre_a.safetensors", fmri[0], embeds, FINETUNE, tmp_path / "s1_a.safetensors", tmp_path / "s1"
    )
    with pytest.raises(TrainingStopped):  # and one fine-tune from A killed midway: its checkpoint is left behind
        finetune_sad(
            tmp_path / "pre_a.safetensors",
            fmri[0],
            embeds,
            FINETUNE,
            tmp_path / "x.safetensors",
            tmp_path / "s1",
            stop_after_steps=3,
        )
    assert (tmp_path / "s1" / "checkpoint.safetensors").exists()

    with h5py.File(fmri[1], "r+") as h5:
        h5["train"][...] = h5["train"][...][::-1]  # subject 2's raw data changed
    train_sad(fmri, embeds, pretrain_settings(), tmp_path / "pre_b.safetensors", tmp_path / "pre")
    assert not same_weights(tmp_path / "pre_a.safetensors", tmp_path / "pre_b.safetensors")
    finetune_sad(
        tmp_path / "pre_b.safetensors", fmri[0], embeds, FINETUNE, tmp_path / "s1_b.safetensors", tmp_path / "s1"
    )
    finetune_sad(
        tmp_path / "pre_b.safetensors", fmri[0], embeds, FINETUNE, tmp_path / "fresh.safetensors", tmp_path / "new"
    )
    assert same_weights(tmp_path / "s1_b.safetensors", tmp_path / "fresh.safetensors")  # trained, from B, from scratch
    assert not same_weights(tmp_path / "s1_b.safetensors", tmp_path / "s1_a.safetensors")


def test_a_checkpoint_is_not_resumed_after_the_loss_code_changed(tmp_path, caplog, monkeypatch):
    """An edit of the loss module (as a user's `--forcerun train_sad` after editing models/losses.py) is another job."""
    (tmp_path / "my_loss.py").write_text(
        "import torch\n\ndef loss(model, batch):\n    return ((model(batch) - 1) ** 2).mean(), {}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_loss")
    batches = [torch.randn(4, 3) for _ in range(6)]

    def run(stop=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        config = TrainConfig(epochs=2, batch_size=4, lr=0.01, checkpoint_every=2)
        return train(
            model,
            module.loss,
            lambda epoch, rng: batches,
            config,
            tmp_path / "state",
            code=[module],
            stop_after_steps=stop,
        )

    with pytest.raises(TrainingStopped):
        run(stop=3)
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"), pytest.raises(TrainingStopped):
        run(stop=1)  # unchanged code: resumed
    assert "resuming at step 3" in caplog.text
    (tmp_path / "my_loss.py").write_text((tmp_path / "my_loss.py").read_text() + "# weighted differently now\n")
    sys.modules.pop("my_loss")
    module = importlib.import_module("my_loss")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"):
        run()
    assert "starting over" in caplog.text and "resuming" not in caplog.text


def test_pretrain_finetune_decode_writes_every_test_clip(small_dataset, tmp_path):
    fmri, embeds, ids = small_dataset
    train_sad(fmri, embeds, pretrain_settings(epochs=8), tmp_path / "pre.safetensors", tmp_path / "pre")
    saved = json.loads((tmp_path / "pre.json").read_text())
    assert saved["sad"]["voxels"] == {"subject1": 30, "subject2": 40} and len(saved["val_clips"]) == 4
    finetune_sad(tmp_path / "pre.safetensors", fmri[0], embeds, FINETUNE, tmp_path / "s1.safetensors", tmp_path / "s1")
    assert json.loads((tmp_path / "s1.json").read_text())["val_clips"] == saved["val_clips"]
    top1 = decode_sad(
        tmp_path / "s1.safetensors", fmri[0], embeds, tmp_path / "pred.safetensors", DECODE | {"refine": False}
    )
    predicted, clip_ids = load_embeddings(tmp_path / "pred.safetensors")
    assert clip_ids == ids[40:] and predicted.shape == (10, 5, 8)
    assert set(load_file(str(tmp_path / "pred.safetensors"))) == {"embeds", "embeds_mlp"}
    assert top1 > 0.3  # 10 clips, chance 0.1: the linear world is learnable
    assert load_model(tmp_path / "s1.safetensors")[0].config.tokens == 5
    decode_sad(tmp_path / "s1.safetensors", fmri[0], embeds, tmp_path / "refined.safetensors", DECODE)
    refined, _ = load_embeddings(tmp_path / "refined.safetensors")
    mlp, _ = load_embeddings(tmp_path / "refined.safetensors", "embeds_mlp")
    torch.testing.assert_close(mlp, predicted)
    assert not torch.allclose(refined, mlp)  # refinement changes the MLP's estimate


def test_ridge_decodes_a_linear_world(small_dataset, tmp_path):
    fmri, embeds, ids = small_dataset
    top1 = ridge(fmri[1], embeds, tmp_path / "ridge.safetensors", {"alphas": [0.01, 1.0, 100.0], "target": "flattened"})
    predicted, clip_ids = load_embeddings(tmp_path / "ridge.safetensors")
    assert clip_ids == ids[40:] and predicted.shape == (10, 5, 8) and top1 >= 0.9
    ridge(fmri[1], embeds, tmp_path / "pooled.safetensors", {"alphas": [1.0], "target": "pooled"})
    assert load_embeddings(tmp_path / "pooled.safetensors")[0].shape == (10, 1, 8)


def test_retrieval_counts_identical_captions_once():
    targets = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [-1.0, 0.2]])[:, None]  # clips 0 and 1 share a caption
    predictions = torch.tensor([[0.9, 0.1], [1.0, 0.0], [0.1, 0.9], [0.3, 0.9]])[:, None]
    assert top1_accuracy(predictions, targets) == 0.75  # clip 3's prediction is closest to clip 2's target
    assert chance_top1(targets) == pytest.approx(1 / 3)


def test_retrieval_counts_identical_captions_once_among_many_clips():
    """Beyond 25 rows torch.cdist measures through a matrix product, which puts identical rows apart; counted as
    rivals, a scene's other clips made a perfect decode miss (README, "Semantics": the retrieval numbers before)."""
    scenes = torch.randn(15, 4, 16, generator=torch.Generator().manual_seed(0))
    targets = scenes.repeat(2, 1, 1)  # 30 clips, each scene's caption twice
    assert top1_accuracy(targets, targets) == 1.0
    assert chance_top1(targets) == pytest.approx(1 / 15)


def test_regression_scores_match_numpy_and_scikit_learn():
    from sklearn.metrics import r2_score

    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(20, 3, 4, generator=generator)
    targets[:, 0, 0] = 0.5  # a feature constant across clips (a padding token): no r, and no weight in R²
    predictions = 0.6 * targets + 0.8 * torch.randn(20, 3, 4, generator=generator)
    x, y = predictions.flatten(1).numpy(), targets.flatten(1).numpy()
    expected_r = np.mean([np.corrcoef(x[:, j], y[:, j])[0, 1] for j in range(1, x.shape[1])])
    assert feature_correlation(predictions, targets) == pytest.approx(expected_r, abs=1e-6)
    assert r_squared(predictions, targets) == pytest.approx(r2_score(y, x, multioutput="variance_weighted"), abs=1e-6)
    mean = targets.mean(0, keepdim=True).expand_as(targets)
    assert r_squared(mean, targets) == pytest.approx(0.0, abs=1e-9)  # the test set's own mean scores 0
    assert r_squared(targets, targets) == 1.0 and feature_correlation(targets, targets) == pytest.approx(1.0)


def test_a_decode_that_is_not_finite_scores_nothing():
    targets = torch.eye(3)[:, None]  # 3 clips, 1 token
    predictions = targets.clone()
    predictions[2] = float("nan")
    assert top1_accuracy(predictions, targets) == pytest.approx(2 / 3)  # NaN compares false: it had no rivals
    assert math.isnan(feature_correlation(predictions, targets)) and math.isnan(r_squared(predictions, targets))


def test_retrieval_table_scores_a_pooled_prediction_against_the_token_mean(tmp_path):
    """`ridge.target: pooled` writes one token per clip; every score compares it with the targets' token mean."""
    from sklearn.metrics import r2_score

    from semvideo_core.stages.sad import semantic_retrieval

    generator = torch.Generator().manual_seed(1)
    targets = torch.randn(12, 3, 4, generator=generator)
    pooled = targets.mean(1, keepdim=True) + 0.5 * torch.randn(12, 1, 4, generator=generator)
    ids = [f"test1_{i}" for i in range(12)]
    write_embeddings(tmp_path / "embeds" / "anchor.safetensors", {"embeds": targets}, ids)
    prediction = tmp_path / "predictions" / "demo" / "ridge" / "subject1" / "anchor.safetensors"
    write_embeddings(prediction, {"embeds": pooled}, ids)
    (row,) = semantic_retrieval([prediction], [tmp_path / "embeds" / "anchor.safetensors"], tmp_path / "table.csv")
    x, y = pooled[:, 0].numpy(), targets.mean(1).numpy()
    assert row["r"] == pytest.approx(np.mean([np.corrcoef(x[:, j], y[:, j])[0, 1] for j in range(4)]), abs=1e-4)
    assert row["r2"] == pytest.approx(r2_score(y, x, multioutput="variance_weighted"), abs=1e-4)


def test_tiny_clip_uses_the_real_clip_tokenizer_and_loads_back(tmp_path):
    from open_clip.tokenizer import SimpleTokenizer

    encoder = load_text_encoder("tiny_clip", tmp_path / "tiny")  # built on first use, then loaded from disk
    assert (encoder.tokens, encoder.dim) == (77, 64)
    ids = encoder._tokenize(["A dog, running on a beach!"])["input_ids"][0]
    reference = SimpleTokenizer()(["A dog, running on a beach!"])[0]
    n = int((reference != 0).sum())
    assert ids[:n].tolist() == reference[:n].tolist()  # same BPE ids, start and end tokens
    first = encoder.encode(["a red ball"])
    again = load_text_encoder("clip", tmp_path / "tiny").encode(["a red ball"])
    torch.testing.assert_close(first, again)


def test_clip_backend_reads_the_diffusers_layout(tmp_path):
    save_tiny_clip(tmp_path / "tokenizer")  # tokenizer/ beside text_encoder/, as in an SD-1.5 folder
    save_tiny_clip(tmp_path / "text_encoder", seed=1)
    for name in ("tokenizer_config.json", "tokenizer.json"):
        (tmp_path / "text_encoder" / name).unlink()
    encoder = load_text_encoder("clip", tmp_path / "text_encoder")
    assert encoder.encode(["a blue cube", "a red ball"]).shape == (2, 77, 64)


def test_open_clip_backend_from_a_local_directory(tmp_path):
    import open_clip
    from safetensors.torch import save_file

    config = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    model = open_clip.CLIP(**config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "open_clip_model.safetensors"))
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}))
    encoder = load_text_encoder("open_clip", tmp_path)
    states = encoder.encode(["a red ball", "a blue cube"])
    assert states.shape == (2, 77, 32)
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a red ball"])
    eot = int(tokens.argmax(dim=-1))  # open_clip pools the end-of-text token, after the projection
    with torch.no_grad():
        pooled = states[0, eot] @ model.text_projection
        torch.testing.assert_close(pooled, model.encode_text(tokens)[0], atol=1e-5, rtol=1e-5)


def test_minilm_embeddings_are_real_and_written_per_caption(tmp_path):
    encoder = load_text_encoder("minilm", None, tokens=16)
    states = encoder.encode(["a dog runs on the beach", "a puppy playing by the sea", "a stock market chart"])
    assert states.shape == (3, 16, 384)
    pooled = torch.nn.functional.normalize(states[:, 0], dim=-1)
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2]  # real weights: related sentences are closer
    write_captions(tmp_path / "anchor.csv", {"a": "a red ball", "b": "a blue cube"}, ["b", "a"])
    settings = {"tokens": 16, "dtype": "float32", "batch_size": 64, "device": "cpu"}
    embed_text(tmp_path / "anchor.csv", {"backend": "minilm", "path": None}, settings, tmp_path / "anchor.safetensors")
    embeds, ids = load_embeddings(tmp_path / "anchor.safetensors")
    assert ids == ["b", "a"] and embeds.shape == (2, 16, 384)
    torch.testing.assert_close(embeds[0], encoder.encode(["a blue cube"])[0])


def test_retrieval_table_names_the_file_of_a_clip_without_an_embedding(tmp_path):
    from semvideo_core.stages.sad import semantic_retrieval

    write_embeddings(
        tmp_path / "embeds" / "anchor.safetensors", {"embeds": torch.randn(2, 3, 4)}, ["seg1_1", "test1_1"]
    )
    prediction = tmp_path / "predictions" / "demo" / "ridge" / "subject1" / "anchor.safetensors"
    write_embeddings(prediction, {"embeds": torch.randn(1, 3, 4)}, ["test9_9"])
    with pytest.raises(ValueError, match=r"anchor.safetensors: clips \['test9_9'\] have no embedding in .*embeds"):
        semantic_retrieval([prediction], [tmp_path / "embeds" / "anchor.safetensors"], tmp_path / "table.csv")
    assert not (tmp_path / "table.csv").exists()
