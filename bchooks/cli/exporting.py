"""`bchooks export`: a store's tables as CSV, XLSX or Parquet files, or orders as Big Cartel's admin CSV (a read:
a missing store is an error, never created)."""

import sys
from datetime import datetime, timezone

from ..errors import InputError
from .commands import _check_since, _config, _open_store

FORMAT_CHOICES = ("csv", "xlsx", "parquet", "bigcartel-csv")
#: the tables the command offers (named here, not asked of `exports`: building the parser never imports pandas);
#: `products` joins them once `analysis.products` exists (the library already exports it then)
TABLE_CHOICES = ("orders", "items", "customers", "products", "events", "all")


def add_parser(commands, settings) -> None:
    """The `export` command, in the parser's `commands` (`settings`: the parser's helper adding setting flags)."""
    export = commands.add_parser("export", help="write orders, items, customers, products or events as csv, xlsx "
                                 "or parquet (orders also as Big Cartel's own CSV)")
    export.add_argument("table", choices=TABLE_CHOICES, help="what to export; all: every table but events, "
                        "as the sheets of one xlsx")
    export.add_argument("--format", choices=FORMAT_CHOICES, default="csv", help="file format (default csv); "
                        "bigcartel-csv: the columns of Big Cartel's admin order export (orders only)")
    export.add_argument("--since", help="only orders (items, customers' orders) created, products updated, events "
                        "received at or after this ISO time")
    export.add_argument("--shop", metavar="ACCOUNT", help="only this shop (an account id, see `bchooks shops`)")
    export.add_argument("--out", metavar="FILE", help="the file to write (default: TABLE-YYYY-MM-DD.EXT in this "
                        "folder, the date today in UTC); - for standard output (csv and bigcartel-csv)")
    export.add_argument("--zone", default="UTC", help="time zone of bigcartel-csv's Date and Time, e.g. "
                        "America/New_York (default UTC: the kit does not know the shop's zone)")
    settings(export, "db")
    export.set_defaults(run=cmd_export, uses_kit=True)


def _zone(name):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--zone must be a time zone such as Europe/London or UTC, got {name!r}") from None


def cmd_export(args):
    from tqdm import tqdm

    from .. import exports
    from ..clock import parse_iso
    since = _check_since(args.since)
    zone = _zone(args.zone)
    out = args.out or exports.default_name(args.table, args.format, datetime.now(timezone.utc).date().isoformat())
    exports.check(args.table, args.format, out)
    config = _config(args)
    with _open_store(config, create=False) as store:
        selection = exports.Selection(since=parse_iso(since) if since else None, shop=args.shop)
        with tqdm(unit=" rows", file=sys.stderr, disable=not sys.stderr.isatty(), delay=1.0,
                  unit_scale=True) as bar:
            def total(rows):
                bar.total = (bar.total or 0) + rows
                bar.refresh()
            written = exports.export(store, args.table, args.format, out, selection=selection, zone=zone,
                                     progress=bar.update, total=total)
    for note in written.notes:
        print(f"bchooks: {note}", file=sys.stderr)
    counts = ", ".join(f"{rows:,} {name}" for name, rows in written.rows.items())
    print(f"wrote {counts} to {out}" if out != "-" else f"bchooks: wrote {counts}",
          file=sys.stdout if out != "-" else sys.stderr)
    return 0
