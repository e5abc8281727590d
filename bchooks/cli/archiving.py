"""`bchooks archive` and `bchooks restore`: old rows moved into Parquet files and back (`bchooks.archives`)."""

import dataclasses
import re
import sys
from datetime import datetime, timedelta, timezone

from ..errors import InputError
from .commands import _config, _open_store

_DAYS = re.compile(r"^(\d+)d$")


def add_parser(commands, settings) -> None:
    """The `archive` and `restore` commands, in the parser's `commands`."""
    archive = commands.add_parser("archive", help="move events received before a time (with their finished "
                                  "handler runs, old rejections and reconciliations) into Parquet files, verified, "
                                  "then delete them from the store and give the space back")
    archive.add_argument("--before", required=True, metavar="TIME", help="ISO-8601 time (2026-06-01T00:00:00Z), or "
                         "days ago (90d)")
    archive.add_argument("--to", dest="archive_dir", metavar="DIR", help="the archive folder, which must exist "
                         "(BCHOOKS_ARCHIVE_DIR)")
    archive.add_argument("--batch", type=int, default=250, help="events a delete transaction (default 250)")
    archive.add_argument("--pause", type=float, default=0.02, help="least seconds between two transactions, at "
                         "least as long as the last one took, so the receiver's commits go first (default 0.02)")
    archive.add_argument("--vacuum", action="store_true", help="SQLite: afterwards rewrite the file (VACUUM) to give "
                         "every free page back and switch it to incremental auto-vacuum; writers wait until it "
                         "ends (minutes on a large store)")
    settings(archive, "db")
    archive.set_defaults(run=cmd_archive, uses_kit=True)

    restore = commands.add_parser("restore", help="bring archived events back into the store byte for byte (same "
                                  "ids, bytes and received_at); events still stored are skipped")
    restore.add_argument("ids", nargs="*", type=int, metavar="ID", help="event ids (default: every archived event "
                         "selected by --since/--until)")
    restore.add_argument("--from", dest="archive_dir", metavar="DIR", help="the archive folder (BCHOOKS_ARCHIVE_DIR)")
    restore.add_argument("--since", metavar="TIME", help="events received at or after this ISO-8601 time")
    restore.add_argument("--until", metavar="TIME", help="events received before this ISO-8601 time")
    settings(restore, "db")
    restore.set_defaults(run=cmd_restore, uses_kit=True)


def _moment(flag, text):
    from ..clock import iso, parse_iso
    days = _DAYS.match(text.strip())
    if days:
        return iso(datetime.now(timezone.utc) - timedelta(days=int(days.group(1))))
    try:
        return iso(parse_iso(text))
    except ValueError:
        raise InputError(f"{flag} must be an ISO-8601 time such as 2026-06-01T00:00:00Z or a number of days such "
                         f"as 90d, got {text!r}") from None


def _directory(config, flag):
    if not config.archive_dir:
        raise InputError(f"say where the archive is: {flag} DIR, or BCHOOKS_ARCHIVE_DIR")
    return config.archive_dir


def cmd_archive(args):
    """Archive, verify, delete, give space back. The store is opened without BCHOOKS_MAX_DB_MB: a store that is
    full (the receiver answering 503) can still be archived."""
    from ..archives import archive, usable_directory
    if args.batch < 1 or args.pause < 0:
        raise InputError("--batch must be at least 1 and --pause not negative")
    config = _config(args)
    before = _moment("--before", args.before)
    directory = usable_directory(_directory(config, "--to"))  # (checked before the store is opened)
    with _open_store(dataclasses.replace(config, max_db_mb=0), create=False) as store:
        print(f"bchooks: archiving what {store.path} received before {before} into {directory}", file=sys.stderr)
        done = archive(store, before, directory, batch=args.batch, pause=args.pause)
        if args.vacuum and store.engine == "sqlite":
            print("bchooks: VACUUM (writers wait until it ends)", file=sys.stderr)
            store.archives.vacuum(full=True)
            store.checkpoint(hold_writers=True)  # (the file shrinks once the log is copied into it)
            done.space_after = store.archives.space()
    for line in done.lines():
        print(line)
    return 0


def cmd_restore(args):
    from ..archives import restore
    config = _config(args)
    since = _moment("--since", args.since) if args.since else None
    until = _moment("--until", args.until) if args.until else None
    directory = _directory(config, "--from")
    with _open_store(dataclasses.replace(config, max_db_mb=0), create=False) as store:
        done = restore(store, directory, since=since, until=until, ids=args.ids or None)
    for line in done.lines():
        print(line)
    return 0
