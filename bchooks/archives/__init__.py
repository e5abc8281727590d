"""Archives: old events (with their finished handler runs, old rejections and reconciliations) moved out of the
store into compressed Parquet files, verified before anything is deleted; restored byte for byte when needed, and
readable by the analysis meanwhile.

    from bchooks import archives
    archives.archive(store, "2026-06-01T00:00:00.000Z", "/srv/bchooks-archive")   # bchooks archive
    archives.restore(store, "/srv/bchooks-archive", since="2026-05-01T00:00:00Z")  # bchooks restore
    analysis.frames(store, archive="/srv/bchooks-archive")                       # frames as if never archived

    files.py      a run's file set: Parquet tables, the manifest, verification, reading archived events
    runs.py       one archive run: write, verify, delete in short transactions, give the space back; resumable
    restore.py    archived events back into the store, same ids and bytes, never twice
    retention.py  the schedule the worker keeps (BCHOOKS_RETAIN_DAYS)

The SQL is the store's (`store/archives.py`); docs/archives.md explains the guarantees.
"""

from .files import archived_events, file_sets
from .restore import Restored, restore
from .retention import Retention
from .runs import Archived, archive, give_space_back, usable_directory

__all__ = ["Archived", "Restored", "Retention", "archive", "archived_events", "file_sets", "give_space_back",
           "restore", "usable_directory"]
