"""The dataset format and its files: the record schema and observation layout, the shard
writer, manifest and sidecars, compression, atomic writes, integrity checks, the one source
resolver every reader stands on, the loader, merge, validate, and the study layout.
"""
