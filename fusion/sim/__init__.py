"""The simulator: topology, traffic, modulation, spectrum, failures, the event engine, its
counters, the routing policies, and the :class:`~fusion.sim.writer.TransitionWriter` protocol
it logs through. It knows nothing of files: whoever runs it hands it a writer.
"""
