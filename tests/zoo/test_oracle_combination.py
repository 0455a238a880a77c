"""Weighted sums of design oracles: ``pi.zoo.combine_oracles``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("rdkit")
pytest.importorskip("selfies")

import probinfer as pi  # noqa: E402

SMILES = ["c1ccccc1", "CCO", "CC(=O)Nc1ccc(O)cc1"]


def test_combination_is_the_weighted_sum_of_its_parts():
    qed, sa, logp = (pi.zoo.load_oracle(n) for n in ("qed", "sa", "logp"))
    combined = pi.zoo.combine_oracles({"qed": 1.0, sa: 0.1, "logp": -0.5})
    expected = qed.score(SMILES) + 0.1 * sa.score(SMILES) - 0.5 * logp.score(SMILES)
    np.testing.assert_allclose(combined.score(SMILES), expected, rtol=1e-12)
    tokens = combined.tokenizer.encode(SMILES)
    np.testing.assert_allclose(combined.score_tokens(tokens), expected, rtol=1e-12)
    assert combined.name == "1*qed + 0.1*sa + -0.5*logp"
    assert "Crippen logP" in combined.description
    assert pi.zoo.combine_oracles({"qed": 1.0}, name="drug-like").name == "drug-like"


def test_a_failed_part_fails_the_design_and_is_counted():
    combined = pi.zoo.combine_oracles({"qed": 1.0, "sa": 0.1})
    tokens = combined.tokenizer.encode(["CCO", "CCO"])
    tokens[1] = combined.tokenizer.vocab.index("[nop]")     # padding only: no molecule
    scores = combined.score_tokens(tokens)
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    assert combined.num_failures == 1


def test_bad_combinations_are_clear_errors():
    with pytest.raises(ValueError, match="same sequences"):
        pi.zoo.combine_oracles({"qed": 1.0, "lac-expression": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        pi.zoo.combine_oracles({"qed": float("nan")})
    with pytest.raises(ValueError, match="finite number"):
        pi.zoo.combine_oracles({"qed": True})
    with pytest.raises(ValueError, match="non-empty dict"):
        pi.zoo.combine_oracles({})
    with pytest.raises(TypeError, match="oracle names or oracles"):
        pi.zoo.combine_oracles({len: 1.0})
    with pytest.raises(ValueError, match="one of"):
        pi.zoo.combine_oracles({"qed-sa": 1.0})
