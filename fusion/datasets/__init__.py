"""Datasets as arrays: the column view of shards, its cache, and seeded minibatches."""
