"""Configuration: INI files read into a typed, frozen :class:`~fusion.config.config.Config`.

The bottom layer above :mod:`fusion.errors`: every key, its choices and checks
(:mod:`fusion.config.config`), the names other layers share (:mod:`fusion.config.vocabulary`),
and ``--set``/``--grid`` assignments and study axes (:mod:`fusion.config.grid`).
"""
