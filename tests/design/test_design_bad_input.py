"""pi.design: clear errors for bad queries, targets, predictors and arguments."""

import numpy as np
import pandas as pd
import pytest

import probinfer as pi

pytest.importorskip("pymoo")

DATA = pd.DataFrame({"a": np.linspace(0.0, 1.0, 40), "c": ["x", "y"] * 20})
QUERY = {"a": 0.2, "c": "x"}


def predict(designs):
    return pd.DataFrame({"s": designs["a"] * 2.0})


def run(query=QUERY, predictor=predict, targets=None, **kwargs):
    return pi.design.counterfactuals(query, DATA, predictor, targets or {"s": (1.0, None)}, 2,
                                     budget=200, population_size=20, **kwargs)


def test_query_with_an_unknown_feature():
    with pytest.raises(ValueError, match="unknown features"):
        run({"a": 0.2, "c": "x", "wheel": 3})


def test_query_missing_a_feature():
    with pytest.raises(ValueError, match="lacks the features"):
        run({"a": 0.2})


def test_query_with_an_unknown_category():
    with pytest.raises(ValueError, match="unknown categories"):
        run({"a": 0.2, "c": "w"}, variables={"c": pi.design.Categorical(("x", "y"))})


def test_query_with_two_rows():
    with pytest.raises(ValueError, match="exactly one row"):
        run(pd.DataFrame({"a": [0.1, 0.2], "c": ["x", "x"]}))


def test_target_on_an_output_the_predictor_does_not_produce():
    with pytest.raises(ValueError, match="does not produce: \\['mass'\\]"):
        run(targets={"s": (1.0, None), "mass": "minimise"})


def test_predictor_returning_the_wrong_number_of_rows():
    with pytest.raises(ValueError, match="returned 1 rows for"):
        run(predictor=lambda d: pd.DataFrame({"s": [1.0]}))


def test_predictor_returning_nan():
    with pytest.raises(ValueError, match="NaN or non-numeric values for output 's'"):
        run(predictor=lambda d: pd.DataFrame({"s": np.where(d["a"] > 0.5, np.nan, 1.0)}))


def test_predictor_returning_a_2d_array():
    with pytest.raises(ValueError, match="shape"):
        run(predictor=lambda d: np.zeros((len(d), 3)))


def test_predictor_returning_an_unnamed_array_for_two_outputs():
    with pytest.raises(ValueError, match="unnamed 1-D array"):
        run(predictor=lambda d: np.zeros(len(d)), targets={"s": (1.0, None), "t": [1]})


def test_predictor_not_callable():
    with pytest.raises(TypeError, match="predict must be callable"):
        run(predictor="model.pkl")


@pytest.mark.parametrize("targets, message", [
    ({"s": (2.0, 1.0)}, "low <= high"),
    ({"s": (None, None)}, "at least one"),
    ({"s": 3.0}, "must be a \\(low, high\\) tuple"),
    ({"s": "minimise"}, "at least one output"),
    ({"s": []}, "at least one class"),
])
def test_bad_targets(targets, message):
    with pytest.raises(ValueError, match=message):
        run(targets=targets)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"method": "cma"}, ValueError, "method must be one of"),
    ({"frozen": ["wheel"]}, ValueError, "frozen names unknown features"),
    ({"frozen": ["a", "c"]}, ValueError, "every feature is frozen"),
    ({"weights": {"speed": 1.0}}, ValueError, "unknown names"),
    ({"weights": {"proximity": -1.0}}, ValueError, ">= 0"),
    ({"key": "seed"}, TypeError, "key must be"),
    ({"variables": {"wheel": pi.design.Real()}}, ValueError, "not columns of data"),
    ({"variables": {"a": pi.design.Real(0.5, 1.0)}}, ValueError, "outside its bounds"),
    ({"max_lambda": 0.0}, ValueError, "max_lambda"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        run(**kwargs)


def test_bad_counts():
    with pytest.raises(ValueError, match="num_counterfactuals"):
        pi.design.counterfactuals(QUERY, DATA, predict, {"s": (1.0, None)}, 0)
    with pytest.raises(ValueError, match="budget"):
        pi.design.counterfactuals(QUERY, DATA, predict, {"s": (1.0, None)}, 2, budget=10)
    with pytest.raises(TypeError, match="data must be a pandas DataFrame"):
        pi.design.counterfactuals(QUERY, DATA.to_numpy(), predict, {"s": (1.0, None)}, 2)


def test_no_valid_design_warns_and_flags_the_rows():
    with pytest.warns(RuntimeWarning, match="no valid design"):
        cf = run(targets={"s": (5.0, None)})
    assert not cf["valid"].any() and cf.attrs["num_candidates"] == 0
