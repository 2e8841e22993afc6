"""Every status string fusion records or reports, defined here once.

A shard entry (manifest or sidecar) says one of :data:`STATUSES`; a study point is
``planned``, ``incomplete``, ``complete`` or ``failed``; a lone or merged file a reader was
given is ``file``.

    >>> STATUS_COMPLETE in STATUSES, STATUS_PLANNED in STATUSES
    (True, False)
"""

from __future__ import annotations

__all__ = [
    "STATUSES",
    "STATUS_COMPLETE",
    "STATUS_FAILED",
    "STATUS_FILE",
    "STATUS_INCOMPLETE",
    "STATUS_PLANNED",
    "STATUS_WRITING",
]

STATUS_WRITING = "writing"  # a shard whose writer has not closed it (yet)
STATUS_COMPLETE = "complete"  # a shard closed whole; a study point whose seeds all are
STATUS_FAILED = "failed"  # a shard whose writer raised or died; a point with a failed seed
STATUSES = (STATUS_WRITING, STATUS_COMPLETE, STATUS_FAILED)  # what a shard entry may say
STATUS_PLANNED = "planned"  # a study point not run yet
STATUS_INCOMPLETE = "incomplete"  # a study point with seeds still to run
STATUS_FILE = "file"  # a lone or merged file a reader was given (closed whole by its maker)
