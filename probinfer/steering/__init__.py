"""Reward-guided generation: the implementation behind the public namespace ``pi.steer``
(:mod:`probinfer.steer`). The modules here are private; import from ``probinfer.steer``."""
