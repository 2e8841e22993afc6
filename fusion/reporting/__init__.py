"""Dataset writing, manifest, merging, loading and validation."""
