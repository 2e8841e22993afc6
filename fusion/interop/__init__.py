"""Exports to the formats other tools read: D4RL-style npz, Parquet and Minari."""
