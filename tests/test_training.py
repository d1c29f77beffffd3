"""The shared training loop: its validation split by runs of clips, its best-epoch selection (with exact resume),
its checkpoint interval and its half precision where a device runs it."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

from semvideo_core.training import TrainConfig, TrainingStopped, block_validation_split, train


def test_the_block_split_holds_out_whole_runs_of_consecutive_clips():
    ids = [f"seg{m}_{k}" for m in (1, 2) for k in range(1, 21)] + ["seg3_1", "seg3_2", "seg3_3"]
    train_rows, held_out = block_validation_split(ids, 0.25, seed=0, block=10)
    # 43 clips, a quarter is 10.75: one run of 10 is held out, a second would overshoot by more than half a run
    assert len(held_out) == 10 and len(train_rows) == 33
    assert sorted([*train_rows, *held_out]) == list(range(43))
    movies = {ids[i].split("_")[0] for i in held_out}
    numbers = sorted(int(ids[i].split("_")[1]) for i in held_out)
    assert len(movies) == 1 and numbers in (list(range(1, 11)), list(range(11, 21)))
    assert len(block_validation_split(ids, 0.0, seed=0, block=10)[1]) == 0
    # 10 % is 4.3 clips, less than half a run: still one whole run, not silently none
    assert len(block_validation_split(ids, 0.1, seed=0, block=10)[1]) in (3, 10)
    _, one_by_one = block_validation_split(ids, 0.25, seed=0, block=1)
    assert len(one_by_one) == 11


def _toy_training(tmp_path, scores, stop_after_steps=None):
    """A linear model, 4 epochs of 3 steps; validate() snapshots the weights (first the starting ones) and returns the
    next of `scores`."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x, y = torch.randn(12, 3), torch.randn(12, 1)
    snapshots, calls = [], iter(scores)

    def plan(epoch, rng):
        return [rows for rows in np.array_split(rng.permutation(12), 3)]

    def loss_fn(model, rows):
        loss = (model(x[rows]) - y[rows]).pow(2).mean()
        return loss, {}

    def validate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"score": next(calls)}

    config = TrainConfig(epochs=4, batch_size=4, lr=0.1, warmup=0.0, checkpoint_every=2)
    train(model, loss_fn, plan, config, tmp_path, validate, select="score", stop_after_steps=stop_after_steps)
    return model, snapshots


def test_select_ends_with_the_best_epochs_weights_and_survives_a_resume(tmp_path):
    scores = [0.0, 0.1, 0.5, 0.3, 0.2]  # the starting weights, then epochs 1-4
    model, snapshots = _toy_training(tmp_path / "whole", scores)
    assert len(snapshots) == 5 and not torch.equal(snapshots[2]["weight"], snapshots[4]["weight"])
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[2][key])  # epoch 2 scored highest
    with pytest.raises(TrainingStopped):  # killed in epoch 4, after epoch 2 was kept as the best
        _toy_training(tmp_path / "killed", scores, stop_after_steps=10)
    resumed, later = _toy_training(tmp_path / "killed", scores[4:])
    assert len(later) == 1
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, snapshots[2][key])


def test_select_keeps_the_starting_weights_when_no_epoch_beats_them(tmp_path):
    model, snapshots = _toy_training(tmp_path, [0.9, 0.1, 0.5, 0.3, 0.2])
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[0][key]) and not torch.equal(value, snapshots[4][key])


def test_select_passes_over_a_nan_score(tmp_path):
    """A NaN at the start must not freeze the selection (every comparison with it is False)."""
    model, snapshots = _toy_training(tmp_path, [float("nan"), 0.1, 0.5, float("nan"), 0.2])
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[2][key])


def test_a_resume_with_another_checkpoint_interval_continues_the_same_training(tmp_path, caplog):
    """The interval is not in the resume fingerprint: a killed job restarted with another one (say, after raising it
    on a slow file system) resumes and ends where an uninterrupted run does; any other setting starts over."""
    x, y = torch.randn(12, 3, generator=torch.Generator().manual_seed(1)), torch.randn(12, 1)

    def run(state, stop=None, **changes):
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        config = TrainConfig(**{"epochs": 3, "batch_size": 4, "lr": 0.1, "checkpoint_every": 2, **changes})
        loss_fn = lambda model, rows: ((model(x[rows]) - y[rows]).pow(2).mean(), {})  # noqa: E731
        plan = lambda epoch, rng: list(np.array_split(rng.permutation(12), 3))  # noqa: E731
        train(model, loss_fn, plan, config, tmp_path / state, stop_after_steps=stop)
        return model

    whole = run("whole")
    with pytest.raises(TrainingStopped):
        run("killed", stop=4)
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"):
        resumed = run("killed", checkpoint_every=5)
    assert "resuming at step 4" in caplog.text and "a checkpoint every 5 steps" in caplog.text
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, whole.state_dict()[key])
    with pytest.raises(TrainingStopped):
        run("other", stop=4)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="semvideo_core.training"):
        run("other", lr=0.05)
    assert "starting over" in caplog.text and "resuming" not in caplog.text


# fp16's gradient scaler skips the optimizer's first steps while it lowers its scale to one the gradients fit: torch
# then warns that the learning-rate schedule stepped first, as it does in every fp16 run on a GPU.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_training_autocasts_on_gpus_and_nowhere_else(tmp_path, precision, monkeypatch, request):
    """precision fp16 / bf16: the loss runs under autocast in that precision where half precision runs (a GPU; the
    CPU here, in the second run), with gradient scaling for fp16, and still fits least squares; on the CPU as
    shipped the same config trains in float32."""
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3

    def fit(directory):
        torch.manual_seed(0)
        model, dtypes = nn.Linear(3, 1), set()

        def loss_fn(model, rows):
            predicted = model(x[rows])
            dtypes.add(predicted.dtype)
            return (predicted.float() - y[rows]).pow(2).mean(), {}

        config = TrainConfig(epochs=40, batch_size=16, lr=0.05, warmup=0.0, precision=precision)
        train(model, loss_fn, lambda epoch, rng: np.array_split(rng.permutation(64), 4), config, directory)
        return model, dtypes

    model, dtypes = fit(tmp_path / "cpu")
    assert dtypes == {torch.float32}
    request.getfixturevalue("half_precision_on_cpu")  # from here on the CPU runs as a GPU does
    scaled = []
    original_scale = torch.amp.GradScaler.scale
    monkeypatch.setattr(
        torch.amp.GradScaler, "scale", lambda self, loss: scaled.append(self.is_enabled()) or original_scale(self, loss)
    )
    model, dtypes = fit(tmp_path / "half")
    assert dtypes == {half}
    assert set(scaled) == {precision == "fp16"}
    solution = torch.linalg.lstsq(torch.cat([x, torch.ones(64, 1)], 1), y).solution.ravel()
    fitted = torch.cat([model.weight.detach().ravel(), model.bias.detach()])
    torch.testing.assert_close(fitted, solution, rtol=0, atol=0.05)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_fp16_training_resumes_exactly_with_the_gradient_scale_it_had_reached(tmp_path, half_precision_on_cpu):
    """fp16's gradient scaler starts at 2^16 and halves at every step whose scaled gradients overflow, skipping that
    step. Targets of large residuals overflow it at first, so an uninterrupted run skips some early steps; a run killed
    after them must resume at the scale they reached, not skip more steps from 2^16 again."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=generator)
    y = 40 * (x @ torch.tensor([[1.0], [-2.0], [0.5]])) + 100
    scales = []

    def run(state, stop=None):
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        config = TrainConfig(epochs=3, batch_size=16, lr=0.05, warmup=0.0, checkpoint_every=100, precision="fp16")
        loss_fn = lambda model, rows: ((model(x[rows]).float() - y[rows]).pow(2).mean(), {})  # noqa: E731
        plan = lambda epoch, rng: list(np.array_split(rng.permutation(48), 3))  # noqa: E731
        train(model, loss_fn, plan, config, tmp_path / state, stop_after_steps=stop)
        return model

    original_update = torch.amp.GradScaler.update

    def recording_update(self, *args, **kwargs):
        original_update(self, *args, **kwargs)
        scales.append(self.get_scale())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.amp.GradScaler, "update", recording_update)
        whole = run("whole")
    assert scales[0] < 2.0**16 and scales[4] < scales[0], "the early steps overflow and lower the scale"
    with pytest.raises(TrainingStopped):
        run("killed", stop=5)
    resumed = run("killed")
    for key, value in resumed.state_dict().items():
        assert torch.equal(value, whole.state_dict()[key])
