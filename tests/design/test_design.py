"""pi.design: distances on hand-checked examples, constraints and frozen features of the
returned designs, determinism, DPP diversity, Pareto front and hypervolume, both searches."""

import numpy as np
import pandas as pd
import pytest

import probinfer as pi

pytest.importorskip("pymoo")


def _mixed_data(num=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(0.0, 10.0, num),
                         "n": rng.integers(0, 5, num),
                         "c": rng.choice(["x", "y", "z"], num),
                         "b": rng.random(num) < 0.5})


class CountingPredictor:
    """s = a + 2 n + 3·[c == 'z'];  kind = 'big' when a > 3."""

    def __init__(self):
        self.calls = 0

    def __call__(self, designs):
        self.calls += len(designs)
        return pd.DataFrame({"s": designs["a"] + 2 * designs["n"] + 3.0 * (designs["c"] == "z"),
                             "kind": np.where(designs["a"] > 3.0, "big", "small")})


QUERY = {"a": 1.0, "n": 0, "c": "x", "b": True}
TARGETS = pi.design.Targets(ranges={"s": (6.0, 8.0)}, classes={"kind": ["big"]})


def test_gower_distance_hand_checked():
    data = pd.DataFrame({"a": [0.0, 10.0], "n": [0, 4], "c": ["x", "y"], "b": [False, True]})
    one = pd.DataFrame({"a": [2.0], "n": [1], "c": ["x"], "b": [False]})
    two = pd.DataFrame({"a": [7.0, 2.0], "n": [3, 1], "c": ["y", "x"], "b": [False, True]})
    # (|2-7|/10 + |1-3|/4 + [x != y] + [F != F]) / 4 = (0.5 + 0.5 + 1 + 0) / 4
    # (0 + 0 + 0 + [F != T]) / 4
    np.testing.assert_allclose(pi.design.gower_distance(one, two, data), [[0.5, 0.25]])


def test_sparsity_counts_changed_features():
    designs = pd.DataFrame({"a": [1.0, 1.0, 2.0], "c": ["x", "y", "y"], "b": [True, True, False]})
    np.testing.assert_array_equal(pi.design.sparsity(designs, {"a": 1.0, "c": "x", "b": True}),
                                  [0, 1, 3])


def test_pareto_front_and_hypervolume_hand_checked():
    points = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    np.testing.assert_array_equal(pi.design.pareto_front(points), [True, True, True, False])
    # Union of [x, 2] x [y, 2] over the front: 0.5·1 + 0.5·1.5 + 1·2.
    assert pi.design.hypervolume(points, [2.0, 2.0]) == pytest.approx(3.25)


def test_dpp_prefers_a_diverse_set():
    # Candidates 0 and 1 are the same design with the best quality; 2 is far and a little
    # worse. Top-2 by quality would return the duplicate pair.
    similarity = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert pi.design.dpp_select(np.array([1.0, 1.0, 0.9]), similarity, 2).tolist() == [0, 2]
    # Partial similarity: a near-copy of the best (0.95 similar) loses to a distinct one.
    similarity = np.array([[1.0, 0.95, 0.1], [0.95, 1.0, 0.1], [0.1, 0.1, 1.0]])
    assert pi.design.dpp_select(np.array([1.0, 0.99, 0.8]), similarity, 2).tolist() == [0, 2]


@pytest.fixture(scope="module")
def nsga2_result():
    predictor = CountingPredictor()
    cf = pi.design.counterfactuals(QUERY, _mixed_data(), predictor, TARGETS, 5, key=3,
                                   budget=1500, frozen=["b"], population_size=50)
    return cf, predictor


def test_nsga2_returns_valid_designs_that_meet_the_targets(nsga2_result):
    cf, predictor = nsga2_result
    assert len(cf) == 5 and cf["valid"].all()
    recomputed = CountingPredictor()(cf[["a", "n", "c", "b"]])
    assert ((recomputed["s"] >= 6.0) & (recomputed["s"] <= 8.0)).all()
    assert (recomputed["kind"] == "big").all()
    np.testing.assert_allclose(cf["s"], recomputed["s"])
    assert cf.attrs["num_predictions"] == predictor.calls <= 1500
    assert cf.attrs["num_candidates"] >= 5 and cf.attrs["hypervolume"] > 0


def test_frozen_features_never_change(nsga2_result):
    cf, _ = nsga2_result
    assert (cf["b"] == True).all()  # noqa: E712
    assert all("b" not in changed for changed in cf["changed"])


def test_reported_objectives_match_their_definitions(nsga2_result):
    cf, _ = nsga2_result
    designs = cf[["a", "n", "c", "b"]]
    query = pd.DataFrame({k: [v] for k, v in QUERY.items()})
    space = pi.design.DesignSpace.from_data(_mixed_data(), extra_rows=query)
    np.testing.assert_allclose(cf["proximity"],
                               pi.design.gower_distance(designs, query, space)[:, 0])
    np.testing.assert_array_equal(cf["sparsity"], pi.design.sparsity(designs, QUERY))
    assert [len(c) for c in cf["changed"]] == cf["sparsity"].tolist()
    assert (cf["n"] == np.round(cf["n"])).all() and cf["c"].isin(["x", "y", "z"]).all()


def test_deterministic_given_a_seed(nsga2_result):
    cf, _ = nsga2_result
    again = pi.design.counterfactuals(QUERY, _mixed_data(), CountingPredictor(), TARGETS, 5,
                                      key=3, budget=1500, frozen=["b"], population_size=50)
    pd.testing.assert_frame_equal(cf, again)


@pytest.mark.slow  # compiles the tempered SMC engine (about 10 s)
def test_smc_through_the_public_api():
    predictor = CountingPredictor()
    cf = pi.design.counterfactuals(QUERY, _mixed_data(), predictor,
                                   {"s": (6.0, 8.0), "kind": ["big"]}, 4, key=1,
                                   method="smc", budget=3000, frozen=["b"])
    assert cf.attrs["method"] == "smc" and cf.attrs["num_predictions"] <= 3000
    assert 0 < cf.attrs["lambda_reached"] <= 1000.0
    assert cf["valid"].all() and (cf["b"] == True).all()  # noqa: E712
    recomputed = CountingPredictor()(cf[["a", "n", "c", "b"]])
    assert ((recomputed["s"] >= 6.0) & (recomputed["s"] <= 8.0)).all()
    assert (recomputed["kind"] == "big").all()


def test_plot_pareto_returns_a_figure(nsga2_result):
    import matplotlib
    matplotlib.use("Agg")
    cf, _ = nsga2_result
    fig = pi.design.plot_pareto(cf, "proximity", "sparsity")
    assert fig.axes[0].get_xlabel() == "proximity"
    with pytest.raises(ValueError, match="not an objective"):
        pi.design.plot_pareto(cf, "weight")
