"""Running simulations: one seed (:mod:`~fusion.run.simulation`), sweeps over seeds
(:mod:`~fusion.run.sweep`), studies over config grids (:mod:`~fusion.run.study`), policy
evaluation (:mod:`~fusion.run.evaluate`), all on one process pool (:mod:`~fusion.run.pool`).
"""
