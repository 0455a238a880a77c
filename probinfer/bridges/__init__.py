"""Schrödinger bridges: entropic OT (Sinkhorn), Gaussian bridges in closed form, dynamic
bridges by IPF, and multi-marginal bridges with iterative reference refinement."""

from probinfer.bridges.dynamic import LinearDrift, RandomFeatures
from probinfer.bridges.gaussian import GaussianBridge, gaussian_bridge
from probinfer.bridges.multimarginal import MultimarginalBridge, multimarginal, schrodinger_bridge
from probinfer.bridges.references import (OU, Brownian, LotkaVolterra, Reference, Repressilator)
from probinfer.bridges.simulate import simulate_snapshots
from probinfer.bridges.sinkhorn import Coupling, SinkhornResult, barycentric_map, sinkhorn
from probinfer.bridges.wasserstein import sinkhorn_divergence, wasserstein

__all__ = ["sinkhorn", "SinkhornResult", "Coupling", "barycentric_map", "wasserstein",
           "sinkhorn_divergence", "gaussian_bridge", "GaussianBridge", "schrodinger_bridge",
           "multimarginal", "MultimarginalBridge", "RandomFeatures", "LinearDrift", "Reference",
           "Brownian", "OU", "LotkaVolterra", "Repressilator", "simulate_snapshots"]
