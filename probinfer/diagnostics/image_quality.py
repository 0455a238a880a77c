"""Sample quality of image priors: a classifier-Fréchet distance and class coverage.

The Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., 2017,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium")
is the FID when the features come from Inception-v3; for 8×8 digits the features are the
penultimate layer of the zoo's ``digits-classifier`` instead. Class coverage summarises
the histogram of predicted classes: the fraction of classes predicted at least once and
the entropy of the histogram relative to its maximum ``log(num_classes)``.

:func:`frechet_distance` and :func:`class_coverage` are NumPy/SciPy only;
:func:`classifier_quality` runs a torch classifier (torch imported lazily).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def _feature_matrix(features, name: str) -> np.ndarray:
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (num_samples, num_features), got {arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples to fit a covariance, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got non-finite entries")
    return arr


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a, features_b) -> float:
    """Fréchet (2-Wasserstein squared) distance between Gaussians fitted to two feature sets.

    ``|mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2})``, with sample
    means and unbiased covariances. The symmetric form of the cross term keeps it real and
    non-negative for positive semi-definite covariances.

    Parameters
    ----------
    features_a, features_b : arrays ``(n_a, d)`` and ``(n_b, d)``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(5000, 3))
    >>> round(frechet_distance(a, a + 1.0), 6)
    3.0
    """
    a = _feature_matrix(features_a, "features_a")
    b = _feature_matrix(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same number of features, "
                         f"got {a.shape[1]} and {b.shape[1]}")
    mean_diff = a.mean(axis=0) - b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_cross = np.sum(np.sqrt(np.clip(cross, 0.0, None)))
    distance = mean_diff @ mean_diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_cross
    return float(max(distance, 0.0))


class ClassCoverage(NamedTuple):
    """Coverage of ``num_classes`` classes by a set of predicted labels.

    Attributes
    ----------
    fraction_present : fraction of classes predicted at least once.
    normalized_entropy : entropy of the class histogram divided by ``log(num_classes)``;
        1 for a uniform histogram, 0 when one class takes everything.
    histogram : ``(num_classes,)`` class frequencies summing to 1.
    """

    fraction_present: float
    normalized_entropy: float
    histogram: np.ndarray


def class_coverage(labels, num_classes: int) -> ClassCoverage:
    """Class coverage of predicted ``labels`` (integers in ``0 .. num_classes - 1``).

    Examples
    --------
    >>> cov = class_coverage([0, 1, 1, 2], num_classes=4)
    >>> cov.fraction_present
    0.75
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-d array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 \
            or labels.max() >= num_classes:
        raise ValueError(f"labels must be integers in [0, {num_classes - 1}]")
    histogram = np.bincount(labels, minlength=num_classes) / labels.size
    nonzero = histogram[histogram > 0]
    entropy = -np.sum(nonzero * np.log(nonzero))
    return ClassCoverage(fraction_present=float(np.mean(histogram > 0)),
                         normalized_entropy=float(entropy / np.log(num_classes)),
                         histogram=histogram)


class ImageQuality(NamedTuple):
    """Quality of generated images against reference images, in a classifier's eyes.

    Attributes
    ----------
    frechet_distance : classifier-Fréchet distance between samples and reference.
    coverage : :class:`ClassCoverage` of the samples' predicted classes.
    mean_confidence : mean over samples of the top predicted class probability.
    num_samples, num_reference : sizes of the two sets.
    """

    frechet_distance: float
    coverage: ClassCoverage
    mean_confidence: float
    num_samples: int
    num_reference: int


def classifier_outputs(classifier, images, batch_size: int = 4096):
    """Penultimate features and class probabilities of a torch classifier, as NumPy.

    ``classifier`` must provide ``features(x)`` and ``forward(x)`` (logits) and an
    ``image_shape`` attribute, like the zoo's ``digits-classifier``; ``images`` of shape
    ``(n, *image_shape)`` or ``(n, prod(image_shape))`` are reshaped to ``image_shape``.
    """
    from probinfer._optional import require

    torch = require("torch", "torch", "classifier_outputs")
    # A copy: JAX arrays convert to read-only NumPy views, which torch.from_numpy rejects.
    arr = np.array(images, dtype=np.float32)
    shape = tuple(classifier.image_shape)
    if arr.ndim < 2 or arr[0].size != int(np.prod(shape)):
        raise ValueError(f"images must have shape (n, {', '.join(map(str, shape))}) or "
                         f"(n, {int(np.prod(shape))}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("images must be finite, got non-finite entries")
    arr = arr.reshape((arr.shape[0],) + shape)
    parameter = next(classifier.parameters())
    features, probs = [], []
    with torch.no_grad():
        for first in range(0, arr.shape[0], batch_size):
            x = torch.from_numpy(arr[first:first + batch_size]).to(parameter.device,
                                                                   parameter.dtype)
            features.append(classifier.features(x).double().cpu().numpy())
            probs.append(torch.softmax(classifier(x).double(), dim=-1).cpu().numpy())
    return np.concatenate(features), np.concatenate(probs)


def classifier_quality(samples, reference, classifier=None,
                       batch_size: int = 4096) -> ImageQuality:
    """Classifier-Fréchet distance and class coverage of ``samples`` against ``reference``.

    Parameters
    ----------
    samples : generated images ``(n, 1, 8, 8)`` or ``(n, 64)``, in the data scaling of the
        classifier (``[-1, 1]`` for the zoo's digits models).
    reference : real images, same layout (e.g. ``pi.zoo.digits("test")[0]``).
    classifier : a torch classifier with ``features``; default the zoo's
        ``digits-classifier`` (needs the ``probinfer[torch]`` extra).
    batch_size : images per classifier call.

    Returns
    -------
    ImageQuality

    Examples
    --------
    >>> import probinfer as pi
    >>> test, _ = pi.zoo.digits("test")
    >>> train, _ = pi.zoo.digits("train")
    >>> q = pi.diagnostics.classifier_quality(train, test)
    >>> q.coverage.fraction_present
    1.0
    """
    if classifier is None:
        from probinfer import zoo
        classifier = zoo.load("digits-classifier").module
    sample_features, sample_probs = classifier_outputs(classifier, samples, batch_size)
    reference_features, _ = classifier_outputs(classifier, reference, batch_size)
    coverage = class_coverage(sample_probs.argmax(axis=-1), sample_probs.shape[-1])
    return ImageQuality(
        frechet_distance=frechet_distance(sample_features, reference_features),
        coverage=coverage,
        mean_confidence=float(sample_probs.max(axis=-1).mean()),
        num_samples=int(sample_features.shape[0]),
        num_reference=int(reference_features.shape[0]))
