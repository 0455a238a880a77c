"""The design zoo: lac-promoter and MOSES/SELFIES masked priors, their oracles, and steering
with rewards that fail on some designs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("rdkit")
pytest.importorskip("selfies")

import jax  # noqa: E402

import probinfer as pi  # noqa: E402
from probinfer import _zoo_design  # noqa: E402



@pytest.fixture(scope="module")
def dna_prior():
    return pi.zoo.load_prior("lac-promoter-mdm", num_steps=15)


@pytest.fixture(scope="module")
def consensus(dna_prior):
    """The library's consensus (its wild-type promoter): the most likely base per position
    given nothing (all positions masked)."""
    probs = np.asarray(dna_prior.denoise(dna_prior.init(jax.random.key(0), 1), 0))[0]
    return dna_prior.decode(probs.argmax(-1))[0]


@pytest.fixture(scope="module")
def mol_prior():
    return pi.zoo.load_prior("moses-selfies-mdm", num_steps=12)


def test_dna_prior_loads_samples_and_round_trips(dna_prior, consensus):
    assert isinstance(dna_prior, pi.diffusion.TorchMaskedDenoiser)
    assert (dna_prior.vocab_size, dna_prior.length, dna_prior.sampler.name) == \
        (4, 75, "ancestral")
    tokens = np.asarray(dna_prior.sample(jax.random.key(0), 4))
    assert tokens.shape == (4, 75) and tokens.min() >= 0 and tokens.max() < 4
    strings = dna_prior.decode(tokens)
    assert all(len(s) == 75 and set(s) <= set("ACGT") for s in strings)
    np.testing.assert_array_equal(dna_prior.encode(strings), tokens)
    assert dna_prior.decode(dna_prior.encode(consensus.lower())) == [consensus]


def test_default_dna_prior_is_exact_first_hitting():
    prior = pi.zoo.load_prior("lac-promoter-mdm")
    assert prior.num_steps == 75 and prior.sampler.name == "first_hitting"


def test_dna_codec_rejects_bad_input(dna_prior):
    with pytest.raises(ValueError, match="length 3"):
        dna_prior.encode("ACG")
    with pytest.raises(ValueError, match="outside"):
        dna_prior.encode("N" * 75)
    with pytest.raises(TypeError, match="strings"):
        dna_prior.encode([1, 2])
    with pytest.raises(ValueError, match="masked"):
        dna_prior.decode(np.full((1, 75), 4))
    with pytest.raises(ValueError, match="shape"):
        dna_prior.decode(np.zeros((2, 10), int))


def test_prior_elbo_prefers_promoters_to_random_sequences(dna_prior, consensus):
    natural = dna_prior.encode([consensus])
    random = np.random.default_rng(0).integers(0, 4, (1, 75))
    # The library is its consensus mutated at ~12 % per site, so the consensus costs far
    # less than the library's ~0.5 nats per base; uniform random letters cost more than
    # log 4 per base under any model of the library.
    assert dna_prior.elbo(natural)[0] / 75 < 0.3
    assert dna_prior.elbo(random)[0] / 75 > np.log(4)
    with pytest.raises(ValueError, match="num_orders"):
        dna_prior.elbo(natural, num_orders=0)


def test_molecule_prior_round_trips_and_decodes_valid_smiles(mol_prior):
    from rdkit import Chem

    smiles = ["c1ccccc1", "CCO", "CC(=O)Nc1ccc(O)cc1"]
    tokens = mol_prior.encode(smiles)
    assert tokens.shape == (3, mol_prior.length)
    assert mol_prior.decode(tokens) == [Chem.CanonSmiles(s) for s in smiles]
    samples = mol_prior.decode(np.asarray(mol_prior.sample(jax.random.key(1), 8)))
    assert all(s == "" or Chem.MolFromSmiles(s) is not None for s in samples)
    with pytest.raises(ValueError, match="more than"):
        mol_prior.encode(["C" * 200])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        mol_prior.encode(["[Se]"])


def test_chemistry_oracles_known_values():
    qed, sa, logp = (pi.zoo.load_oracle(n) for n in ("qed", "sa", "logp"))
    # QED of benzene (Bickerton et al. 2012 weights, RDKit): 0.4426; Crippen logP 1.6866;
    # benzene is as easy to make as it gets: SA score 1 (reward -SA = -1).
    np.testing.assert_allclose(qed.score("c1ccccc1"), [0.44262837], atol=1e-6)
    np.testing.assert_allclose(logp.score("c1ccccc1"), [1.6866], atol=1e-4)
    np.testing.assert_allclose(sa.score("c1ccccc1"), [-1.0], atol=1e-6)
    assert sa.score("CC12CC3CC(C1)C(N)(C3)C2O")[0] < -3      # a caged polycycle is harder


def test_oracle_failures_are_nan_and_counted():
    qed = pi.zoo.load_oracle("qed")
    out = qed.score(["CCO", "", "C1CC"])                        # empty; unclosed ring
    assert np.isfinite(out[0]) and np.isnan(out[1:]).all()
    assert qed.num_failures == 2


def test_load_oracle_rejects_unknown_names():
    with pytest.raises(ValueError, match="must be one of"):
        pi.zoo.load_oracle("toxicity")
    with pytest.raises(ValueError, match="must be one of"):
        pi.zoo.load_prior("moses-selfies")


def test_expression_oracles_agree_on_prior_samples(dna_prior):
    tokens = np.asarray(dna_prior.sample(jax.random.key(2), 128))
    steer = pi.zoo.load_oracle("lac-expression").score_tokens(tokens)
    held = pi.zoo.load_oracle("lac-expression-heldout").score_tokens(tokens)
    assert np.isfinite(steer).all() and np.isfinite(held).all()
    # Two model families on disjoint splits: their predictions must track each other
    # (on MAVE-NN's test split Pearson r is in the lac-expression model card).
    assert np.corrcoef(steer, held)[0, 1] > 0.5


@pytest.mark.slow
def test_fk_steering_raises_expression(dna_prior):
    reward = pi.zoo.load_oracle("lac-expression")
    base = reward.score_tokens(np.asarray(dna_prior.sample(jax.random.key(3), 128)))
    res = pi.steer.fk(jax.random.key(4), dna_prior, reward, 32, temperature=0.1,
                      num_reward_draws=4)
    steered = reward.score_tokens(np.asarray(res.samples))
    weights = np.exp(np.asarray(res.log_weights))
    mean = float(np.sum(weights * steered))
    # The tilt at T = 0.1 moves the mean by several prior standard deviations; a margin of
    # one standard deviation is far outside the Monte-Carlo error of either estimate.
    assert mean > base.mean() + base.std()


@pytest.mark.slow
def test_steering_survives_rewards_that_fail_on_some_designs(mol_prior):
    qed = _zoo_design.molecule_property("qed")

    def fails_on_nitrogen(smiles):
        if "N" in smiles.upper():
            raise RuntimeError("cannot score nitrogen")
        return qed(smiles)

    reward = _zoo_design.Oracle("qed-no-N", fails_on_nitrogen, mol_prior.tokenizer)
    res = pi.steer.best_of_n(jax.random.key(5), mol_prior, reward, 8, 4,
                             invalid_reward="reject")
    assert int(res.info.num_invalid_rewards) > 0
    assert int(res.info.num_invalid_rewards) == reward.num_failures
    assert all("N" not in s.upper() for s in mol_prior.decode(res.samples))
    with pytest.raises(ValueError, match="NaN"):
        pi.steer.best_of_n(jax.random.key(5), mol_prior, reward, 8, 4)
    fk = pi.steer.fk(jax.random.key(6), mol_prior, reward, 8, num_reward_draws=2,
                     invalid_reward="reject")
    assert int(np.sum(fk.info.num_invalid_rewards)) > 0
    assert np.isfinite(np.asarray(fk.log_weights)).any()
