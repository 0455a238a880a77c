"""Diagnostics: ArviZ conversion (more to come: MCSE, plots)."""

from probinfer.diagnostics.arviz import to_arviz
from probinfer.diagnostics.image_quality import (ClassCoverage, ImageQuality, class_coverage,
                                                 classifier_outputs, classifier_quality,
                                                 frechet_distance)

__all__ = ["to_arviz", "frechet_distance", "class_coverage", "classifier_outputs",
           "classifier_quality", "ClassCoverage", "ImageQuality"]
