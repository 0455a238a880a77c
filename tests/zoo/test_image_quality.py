"""Classifier-Fréchet distance and class coverage against exact answers."""

import numpy as np
import pytest

from probinfer.diagnostics import class_coverage, frechet_distance


def test_frechet_distance_of_a_set_with_itself_is_zero(rng):
    a = rng.normal(size=(500, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_a_shift_is_the_squared_shift(rng):
    # Same sample covariance on both sides: the trace term cancels exactly.
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    shift = rng.normal(size=5)
    assert frechet_distance(a, a + shift) == pytest.approx(shift @ shift, rel=1e-8)


def test_frechet_distance_in_one_dimension_is_mean_and_std_gap(rng):
    a = rng.normal(1.0, 2.0, size=(300, 1))
    b = rng.normal(-0.5, 0.5, size=(200, 1))
    exact = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-8)


def test_frechet_distance_matches_commuting_covariances(rng):
    # Diagonal sample covariances commute: tr sqrt(Ca Cb) = sum sqrt(ca_i cb_i).
    a = rng.normal(size=(50, 3))
    b = rng.normal(size=(60, 3)) * np.array([1.0, 2.0, 3.0])
    a = a - a.mean(0)
    b = b - b.mean(0) + 1.0
    # Rotate each set onto its principal axes so the sample covariances are diagonal.
    a = a @ np.linalg.eigh(np.cov(a, rowvar=False))[1]
    b = b @ np.linalg.eigh(np.cov(b, rowvar=False))[1]
    ca, cb = np.diag(np.cov(a, rowvar=False)), np.diag(np.cov(b, rowvar=False))
    mean_gap = a.mean(0) - b.mean(0)
    exact = mean_gap @ mean_gap + np.sum((np.sqrt(ca) - np.sqrt(cb)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(exact, rel=1e-8)
    assert frechet_distance(b, a) == pytest.approx(exact, rel=1e-8)


def test_frechet_distance_rejects_bad_input(rng):
    a = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="features_b"):
        frechet_distance(a, rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="features_a"):
        frechet_distance(a[:1], a)
    bad = a.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="features_b must be finite"):
        frechet_distance(a, bad)


def test_class_coverage_counts_and_entropy():
    uniform = class_coverage(np.repeat(np.arange(10), 3), num_classes=10)
    assert uniform.fraction_present == 1.0
    assert uniform.normalized_entropy == pytest.approx(1.0)
    collapsed = class_coverage(np.full(7, 3), num_classes=10)
    assert collapsed.fraction_present == pytest.approx(0.1)
    assert collapsed.normalized_entropy == pytest.approx(0.0)
    half = class_coverage(np.array([0, 1]), num_classes=4)
    assert half.normalized_entropy == pytest.approx(np.log(2) / np.log(4))
    np.testing.assert_allclose(half.histogram, [0.5, 0.5, 0.0, 0.0])


def test_class_coverage_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels"):
        class_coverage(np.array([0, 10]), num_classes=10)
    with pytest.raises(ValueError, match="labels"):
        class_coverage(np.array([0.5, 1.0]), num_classes=10)
    with pytest.raises(ValueError, match="num_classes"):
        class_coverage(np.array([0]), num_classes=1)
