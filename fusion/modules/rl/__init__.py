"""Upstream FUSION's ``fusion.modules.rl`` path: see :mod:`fusion.modules.rl.policies`."""
