"""Upstream FUSION's ``fusion.modules`` path, kept for the seed card's imports."""
