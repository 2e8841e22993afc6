"""The seed card's import path, kept so its code and tests run unchanged.

The storage layer lives in :mod:`fusion.storage`; :mod:`fusion.reporting.dataset_logger`
re-exports the names the seed card imports from here.
"""
