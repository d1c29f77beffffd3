"""N-way top-k classification accuracy of reconstructions (2-way / 50-way, -I per frame and -V per clip), from the
logits of a judge classifier on the true and the reconstructed frames or clips (computed elsewhere).

The reference protocol (metrics.md §2.1; MinD-Video, NEURONS, Mind-Animator): the true "label" G is the set of the
`truth_top` (3) classes the judge ranks highest on the truth; each trial draws n_way - 1 distractor classes outside G
and succeeds if some g in G ranks within the top k of [p[g]] + p[distractors] in the softmax of the recon logits.
Ties count for G (a distractor must be strictly more probable to beat it). Chance is therefore
truth_top / (truth_top + n_way - 1) for top-1 (0.75 for 2-way, 3/52 for 50-way), not 1 / n_way.

`n_way_expected` gives the exact expectation of that trial (deterministic); `n_way_monte_carlo` replays the
reference trial loop with a seeded legacy RandomState, to reproduce the published Monte-Carlo numbers' protocol;
`n_way_mismatched` scores each reconstruction against the other rows' truth, the chance of a biased judge.
"""

from __future__ import annotations

from math import comb

import numpy as np


def _softmax(logits: np.ndarray) -> np.ndarray:
    """[M, C] -> [M, C] softmax in float64 (max subtracted, so large logits do not overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _check(recon_logits, truth_logits, n_way: int, top_k: int, truth_top: int) -> tuple[np.ndarray, np.ndarray]:
    recon, truth = np.asarray(recon_logits), np.asarray(truth_logits)
    if recon.ndim != 2 or recon.shape != truth.shape:
        raise ValueError(
            f"recon and truth logits must both be [M, C] of one shape, got {recon.shape} and {truth.shape}"
        )
    classes = recon.shape[1]
    if not 1 <= truth_top < classes:
        raise ValueError(f"truth_top must be in 1..{classes - 1} for {classes} classes, got {truth_top}")
    if n_way < 2 or top_k < 1:
        raise ValueError(f"n_way must be >= 2 and top_k >= 1, got n_way={n_way}, top_k={top_k}")
    if n_way - 1 > classes - truth_top:
        raise ValueError(
            f"{n_way}-way needs {n_way - 1} distractor classes outside the truth's top {truth_top}, but the judge "
            f"has only {classes} classes ({classes - truth_top} distractors); use fewer ways or a larger judge"
        )
    return recon, truth


def truth_classes(truth_logits: np.ndarray, truth_top: int = 3) -> np.ndarray:
    """[M, C] -> [M, truth_top] ids of the truth_top largest truth logits per row, in ascending-logit order."""
    order = np.argsort(np.asarray(truth_logits), axis=1, kind="stable")
    return order[:, -truth_top:]


def _beaters(p: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """[M, C] probabilities, [M, k] truth classes -> [M] number of non-truth classes strictly above max p[truth]."""
    best = np.take_along_axis(p, truth, axis=1).max(axis=1)
    above = p > best[:, None]
    above[np.arange(len(p))[:, None], truth] = False  # truth classes are never distractors
    return above.sum(axis=1)


def _success_probability(pool: int, beaters: int, draws: int, top_k: int) -> float:
    """P(X < top_k), X ~ Hypergeometric(pool, beaters, draws): fewer than top_k of the draws beat the truth.
    Exact integer combinatorics; only the final division rounds."""
    favourable = sum(comb(beaters, x) * comb(pool - beaters, draws - x) for x in range(min(top_k, draws + 1)))
    return favourable / comb(pool, draws)


def n_way_expected(
    recon_logits: np.ndarray, truth_logits: np.ndarray, n_way: int, top_k: int = 1, truth_top: int = 3
) -> np.ndarray:
    """[M, C] x 2 -> [M] expected N-way top-k accuracy of each row (frame or clip) over the random distractors.

    With N = C - truth_top candidate distractors, of which B beat the best truth class in the recon softmax, the
    trial succeeds iff fewer than top_k of the n_way - 1 draws are among the B: for top-1, C(N-B, n-1) / C(N, n-1)."""
    recon, truth = _check(recon_logits, truth_logits, n_way, top_k, truth_top)
    pool = recon.shape[1] - truth_top
    beaters = _beaters(_softmax(recon), truth_classes(truth, truth_top))
    table = {b: _success_probability(pool, int(b), n_way - 1, top_k) for b in np.unique(beaters)}
    return np.array([table[b] for b in beaters], dtype=np.float64)


def n_way_mismatched(
    recon_logits: np.ndarray, truth_logits: np.ndarray, n_way: int, top_k: int = 1, truth_top: int = 3
) -> np.ndarray:
    """[M, C] x 2 -> [M]: for each recon row i, the mean over every other row j of the expected N-way accuracy of
    recon i against truth j: what this reconstruction scores against unrelated ground truth, the judge's own chance
    for it. A judge that ranks some classes high for every reconstruction puts it away from `n_way_chance`, which
    assumes the recon's ranking random; the difference to `n_way_expected` is what the match itself adds."""
    recon, truth = _check(recon_logits, truth_logits, n_way, top_k, truth_top)
    if len(recon) < 2:
        raise ValueError("n_way_mismatched needs at least two rows to pair each with another")
    p, top = _softmax(recon), truth_classes(truth, truth_top)
    best = p[:, top].max(axis=2)  # [M (recon i), M (truth j)]: p_i of truth j's most probable class
    ranked = np.sort(p, axis=1)
    # Non-truth classes strictly above best: none of truth j's classes is (best is their maximum).
    beaters = p.shape[1] - np.stack([np.searchsorted(ranked[i], best[i], side="right") for i in range(len(p))])
    pool = p.shape[1] - truth_top
    table = {b: _success_probability(pool, int(b), n_way - 1, top_k) for b in np.unique(beaters)}
    expected = np.vectorize(table.__getitem__, otypes=[np.float64])(beaters)
    np.fill_diagonal(expected, 0.0)
    return expected.sum(axis=1) / (len(p) - 1)


def n_way_monte_carlo(
    recon_logits: np.ndarray,
    truth_logits: np.ndarray,
    n_way: int,
    trials: int = 100,
    seed: int = 0,
    top_k: int = 1,
    truth_top: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """[M, C] x 2 -> (accuracy [M], binomial standard error [M]) of the reference trial loop.

    One np.random.RandomState(seed) is consumed in row order; each trial draws
    `rng.choice(pool, n_way - 1, replace=False)` from the non-truth class ids in increasing order, exactly as the
    reference's legacy-RNG call does. Standard error = sqrt(acc (1 - acc) / trials), what the papers report as ±."""
    recon, truth = _check(recon_logits, truth_logits, n_way, top_k, truth_top)
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    rng = np.random.RandomState(seed)
    p, top = _softmax(recon), truth_classes(truth, truth_top)
    accuracy = np.empty(len(p))
    for row in range(len(p)):
        pool = np.setdiff1d(np.arange(p.shape[1]), top[row])  # sorted, as the reference's list comprehension
        drawn = np.stack([rng.choice(pool, n_way - 1, replace=False) for _ in range(trials)])
        # Some g in G is within the top k iff the best g is: count distractors strictly above it.
        above = (p[row, drawn] > p[row, top[row]].max()).sum(axis=1)
        accuracy[row] = (above < top_k).mean()
    return accuracy, np.sqrt(accuracy * (1 - accuracy) / trials)


def n_way_chance(n_way: int, num_classes: int, truth_top: int = 3, top_k: int = 1) -> float:
    """Expected N-way accuracy of a reconstruction unrelated to the truth (a uniformly random recon ranking).

    Among the truth_top truth classes and the n_way - 1 distractors every order is equally likely, whatever
    num_classes is, so chance = 1 - C(n-1, k) / C(n-1+truth_top, k): 3/4 for 2-way, 3/52 for 50-way (top-1).
    num_classes only decides whether the protocol is possible (ValueError if too few classes)."""
    if n_way - 1 > num_classes - truth_top or not 1 <= truth_top < num_classes:
        raise ValueError(
            f"{n_way}-way with the top {truth_top} truth classes needs at least {n_way - 1 + truth_top} classes, "
            f"the judge has {num_classes}"
        )
    if n_way < 2 or top_k < 1:
        raise ValueError(f"n_way must be >= 2 and top_k >= 1, got n_way={n_way}, top_k={top_k}")
    return 1 - comb(n_way - 1, top_k) / comb(n_way - 1 + truth_top, top_k)
