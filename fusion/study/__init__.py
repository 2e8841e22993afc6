"""Studies: grids of datasets over config keys (loads, policies, ...) and seeds."""
