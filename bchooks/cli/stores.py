"""The `bchooks` commands about the store itself: check (which engine and schema), migrate (copy into another)."""

import sys

from ..errors import InputError
from .commands import _config, _open_store


def cmd_check(args):
    """Which store the settings name, its engine and schema version, and how many events it holds (a read: a
    missing store is an error, never created)."""
    from ..store.schema import SCHEMA_VERSION
    config = _config(args)
    with _open_store(config, create=False) as store:
        version, events = store.schema_version(), store.count()
        last_id, _ = store.last_event()
    print(f"store:   {config.db_display()}\n"
          f"engine:  {store.engine}\n"
          f"schema:  version {version} (this bchooks: {SCHEMA_VERSION})\n"
          f"events:  {events:,} (newest id {last_id})")
    return 0


def cmd_migrate(args):
    """Copy every event (byte for byte, ids kept), rejection, handler run and reconciliation of one store into
    another; resumable and safe to run again."""
    from tqdm import tqdm

    from ..store import open_store
    from ..store.transfer import copy_store
    config = _config(args)
    if not args.source or not args.target:
        raise InputError("say both stores: --from bchooks.db --to postgresql://user@host/db")
    with open_store(args.source, busy_timeout=config.busy_timeout, create=False) as source:
        with open_store(args.target, busy_timeout=config.busy_timeout) as target:
            print(f"bchooks: copying {source.path} ({source.engine}) into {target.path} ({target.engine})",
                  file=sys.stderr)
            with tqdm(unit=" events", file=sys.stderr, disable=None, unit_scale=True) as bar:
                def progress(count, total):
                    if total is not None:
                        bar.reset(total)
                    bar.update(count)
                copied = copy_store(source, target, batch=args.batch, progress=progress)
    for line in copied.lines():
        print(line)
    return 0
