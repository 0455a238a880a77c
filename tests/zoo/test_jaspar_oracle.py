"""JASPAR motif rewards of DNA designs: ``pi.zoo.load_oracle("jaspar:<matrix id>")``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyjaspar")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import probinfer as pi  # noqa: E402
from probinfer import _zoo_design  # noqa: E402

TBP = "MA0108.3"          # TATA-box binding protein, 7 bp, consensus TATAAAA


@pytest.fixture(scope="module")
def tbp():
    return pi.zoo.load_oracle(f"jaspar:{TBP}")


def test_tiny_matrix_scores_by_hand():
    # width-2 matrix on 5-bp sequences: forward windows AC CG GT TA; the reverse strand of
    # ACGTA is TACGT, windows TA AC CG GT.
    log_odds = np.array([[1.0, -1.0, 0.5, -2.0],     # position 0: A C G T
                         [0.0, 3.0, -1.0, 0.25]])    # position 1
    reward = _zoo_design.MotifReward("tiny", log_odds, _zoo_design.DNATokenizer("ACGT", 5))
    scores = {"AC": 1.0 + 3.0, "CG": -1.0 - 1.0, "GT": 0.5 + 0.25, "TA": -2.0 + 0.0}
    expected = max(scores.values())                  # AC on both strands: 4.0
    assert reward.score(["ACGTA"])[0] == pytest.approx(expected)
    # Only the reverse strand holds the best window: GTTTT has forward windows GT, TT, TT,
    # TT (best 0.5 + 0.25); its reverse complement AAAAC has AA (1.0 + 0.0) and AC (4.0).
    assert reward.score(["GTTTT"])[0] == pytest.approx(4.0)
    # The same function traced and vmapped, as the steering runners call it.
    tokens = reward.tokenizer.encode(["ACGTA", "GTTTT", "CCCCC"])
    np.testing.assert_allclose(jax.jit(jax.vmap(reward))(jnp.asarray(tokens)),
                               [4.0, 4.0, -1.0 + 3.0])


def test_jaspar_matrix_is_biopython_log_odds_of_the_counts(tbp):
    from pyjaspar import jaspardb

    counts = jaspardb(release=_zoo_design.JASPAR_RELEASE).fetch_motif_by_id(TBP).counts
    c = np.array([counts[b] for b in "ACGT"], np.float64).T        # (7, 4)
    probs = (c + _zoo_design.JASPAR_PSEUDOCOUNT) / \
        (c.sum(1, keepdims=True) + 4 * _zoo_design.JASPAR_PSEUDOCOUNT)
    np.testing.assert_allclose(tbp.log_odds, np.log2(probs / 0.25), rtol=1e-5)
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 4, 75)
    by_hand = max(sum(np.log2(probs[j, s[i + j]] / 0.25) for j in range(7))
                  for s in (seq, 3 - seq[::-1]) for i in range(75 - 7 + 1))
    assert tbp.score_tokens(seq[None])[0] == pytest.approx(by_hand, rel=1e-5)


def test_planted_consensus_scores_highest(tbp):
    rng = np.random.default_rng(1)
    background = rng.integers(0, 4, size=(64, 75)).astype(np.int32)
    consensus = tbp.tokenizer.encode(["TATAAAA" + "C" * 68])[0, :7]
    planted = background.copy()
    planted[:, 30:37] = consensus
    best_possible = tbp.log_odds.max(axis=1).sum()
    np.testing.assert_allclose(tbp.score_tokens(planted), best_possible, rtol=1e-6)
    # Random 75-mers hold TATAAAA on one strand with probability ~1 %: those tie.
    windows = np.lib.stride_tricks.sliding_window_view(background, 7, axis=1)
    holds = np.any(np.all(windows == consensus, -1) | np.all(windows == 3 - consensus[::-1], -1),
                   axis=1)
    scores = tbp.score_tokens(background)
    assert np.all(scores[~holds] < best_possible - 1.0)
    np.testing.assert_allclose(scores[holds], best_possible, rtol=1e-6)
    # Reverse complement planted: the same best score.
    planted[:, 30:37] = 3 - consensus[::-1]
    np.testing.assert_allclose(tbp.score_tokens(planted), best_possible, rtol=1e-6)


def test_motif_reward_steers_best_of_n(tbp):
    prior = pi.diffusion.MarkovChainPrior(jnp.full(4, 0.25), jnp.full((4, 4), 0.25), 75,
                                          num_steps=5)
    res = pi.steer.best_of_n(jax.random.key(0), prior, tbp, 16, 8)
    unguided = tbp.score_tokens(np.asarray(prior.sample(jax.random.key(1), 64)))
    assert np.median(tbp.score_tokens(np.asarray(res.samples))) > np.median(unguided)


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="no matrix 'MA9999.1' in JASPAR2024"):
        pi.zoo.load_oracle("jaspar:MA9999.1")
    with pytest.raises(ValueError, match=r"one of \['qed'.*jaspar:<matrix id>"):
        pi.zoo.load_oracle("jaspar-MA0108")
    with pytest.raises(ValueError, match="jaspar:<matrix id>"):
        pi.zoo.load_oracle("jaspar:")
