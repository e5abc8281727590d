"""The `bchooks` commands about the store itself: check (which engine and schema), migrate (copy into another)."""

import sys

from ..errors import InputError
from ..secrecy import url_passwords
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


#: where `migrate` reads the store to fill when --to is not given (a URL with a password stays out of `ps`)
MIGRATE_TO_ENV = "BCHOOKS_MIGRATE_TO"


def _migrate_stores(args, config):
    """The stores `migrate` copies from and into, as settings are checked: --from (default: the `db` setting,
    BCHOOKS_DB) and --to (default: BCHOOKS_MIGRATE_TO). A URL of another scheme, or one that does not parse, is
    refused in one line without its password."""
    import os

    from ..config import SETTINGS
    parse = next(setting.parse for setting in SETTINGS if setting.field == "db")
    source = parse("--from", args.source) if args.source else config.db
    target_text = args.target or os.environ.get(MIGRATE_TO_ENV, "").strip()
    if not target_text:
        raise InputError(f"say which store to fill: --to postgresql://user@host/db, or {MIGRATE_TO_ENV} (better for "
                         "a URL with a password: flags show in ps)")
    target = parse("--to" if args.target else MIGRATE_TO_ENV, target_text)
    for flag, value in (("--from", args.source), ("--to", args.target)):
        if value and url_passwords(value):
            print(f"bchooks: the password in {flag} shows in ps: prefer BCHOOKS_DB (--from) and {MIGRATE_TO_ENV} "
                  "(--to)", file=sys.stderr)
    return source, target


def cmd_migrate(args):
    """Copy every event (byte for byte, ids kept), rejection, handler run and reconciliation of one store into
    another; resumable and safe to run again."""
    from tqdm import tqdm

    from ..store import open_store
    from ..store.transfer import copy_store
    config = _config(args)
    source_db, target_db = _migrate_stores(args, config)
    with open_store(source_db, busy_timeout=config.busy_timeout, create=False) as source:
        with open_store(target_db, busy_timeout=config.busy_timeout) as target:
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
