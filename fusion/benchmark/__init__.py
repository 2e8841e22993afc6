"""The benchmark: a declared suite of reference datasets (presets x behaviours, fixed seeds),
their builds and their data cards (``fusion benchmark list`` / ``build``)."""
