"""Diagnostics: ArviZ conversion (more to come: MCSE, plots)."""

from probinfer.diagnostics.arviz import to_arviz

__all__ = ["to_arviz"]
