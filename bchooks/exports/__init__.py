"""Exports: a store's orders, line items, customers, products and events as files that spreadsheets and other tools
read (CSV, XLSX, Parquet), and orders as Big Cartel's own admin order CSV. Money stays exact in every format.

    from bchooks import exports
    exports.export(store, "orders", "xlsx", "orders.xlsx", selection=exports.Selection(shop="1234567"))

    sources.py        what each table holds, selected by shop and time (from the analysis frames, or the events)
    tables.py         writing frames as CSV, XLSX (XlsxWriter) and Parquet
    bigcartel_csv.py  Big Cartel's admin order CSV, with what the frames leave out read from the stored bodies

`bchooks export` (cli/exporting.py) is the command over `export`; docs/exports.md says what each file holds.
"""

import os
from collections.abc import Callable
from datetime import timezone, tzinfo
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .sources import Selection
    from .tables import Written

BIGCARTEL_CSV = "bigcartel-csv"
#: what `check` accepts without importing pandas (the tables and formats modules hold the same)
_TABLES = ("orders", "items", "customers", "products", "events")
_FORMATS = ("csv", "xlsx", "parquet")
#: file name extension of each format
EXTENSIONS = {"csv": "csv", "xlsx": "xlsx", "parquet": "parquet", BIGCARTEL_CSV: "csv"}
#: the names this package offers, from the module that holds each (imported when first used: checking a command
#: line never imports pandas)
_LAZY = {"HEADER": "bigcartel_csv", "write_bigcartel_csv": "bigcartel_csv", "ALL": "sources", "TABLES": "sources",
         "Selection": "sources", "available_tables": "sources", "event_frames": "sources",
         "order_frames": "sources", "table_frame": "sources", "FORMATS": "tables", "Written": "tables",
         "write_csv": "tables", "write_parquet": "tables", "write_xlsx": "tables"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check(table: str, format: str, out: Any = None) -> None:
    """`InputError` for a table or format this bchooks does not export, a pair that does not go together, or an
    `out` it cannot be written to (a binary format to standard output, a folder that does not exist)."""
    tables = [name for name in _TABLES if name != "products"]
    if table == "products":
        from .sources import available_tables
        tables = list(available_tables())
    if table != "all" and table not in tables:
        raise InputError(f"unknown table {table!r}; tables: {', '.join(tables)}, or all (xlsx)")
    if format not in (*_FORMATS, BIGCARTEL_CSV):
        raise InputError(f"unknown format {format!r}; formats: {', '.join((*_FORMATS, BIGCARTEL_CSV))}")
    if format == BIGCARTEL_CSV and table != "orders":
        raise InputError("the bigcartel-csv format is of orders only: bchooks export orders --format bigcartel-csv")
    if table == "all" and format != "xlsx":
        raise InputError("all tables go into one file only as xlsx (a sheet a table): --format xlsx, or export "
                         "the tables one by one")
    if out == "-" and format in ("xlsx", "parquet"):
        raise InputError("a binary format cannot go to standard output: give a file with --out")
    if out not in (None, "-") and not os.path.isdir(os.path.dirname(os.fspath(out)) or "."):
        raise InputError(f"cannot write {os.fspath(out)}: no such folder")


def default_name(table: str, format: str, day: str) -> str:
    """The file an export writes when not told: `orders-2026-12-02.xlsx` (`orders-bigcartel-...csv`)."""
    stem = f"{table}-bigcartel" if format == BIGCARTEL_CSV else table
    return f"{stem}-{day}.{EXTENSIONS[format]}"


def count_rows(store: Any, table: str, selection: "Selection") -> int | None:
    """How many rows an export of `table` will write where that is cheap to know (None: not known beforehand)."""
    if table == "events":
        return store.count() if selection.since is None and selection.shop is None else None
    return None


def export(store: Any, table: str, format: str, out: Any, *, selection: "Selection | None" = None,
           zone: tzinfo = timezone.utc, progress: Callable[[int], None] | None = None,
           total: Callable[[int], None] | None = None) -> "Written":
    """Write `table` (or `all`: orders, items, customers and products as sheets of one XLSX) of the store, as
    `selection` selects, in `format` into `out` (a path, or `-` for standard output: text formats only). A file is
    written whole or not at all. `progress(rows)` is told of rows as they are written, `total(rows)` of how many
    there will be when known. `zone`: the zone of bigcartel-csv's Date and Time."""
    from .bigcartel_csv import write_bigcartel_csv
    from .sources import ALL, Selection, available_tables, event_frames, order_frames, table_frame
    from .tables import Written, chunks_of, write_csv, write_parquet, write_xlsx
    check(table, format, out)
    selection = selection or Selection()
    written = Written()

    def frames_of(name):
        frame = table_frame(store, name, selection)
        if total:
            total(len(frame))
        return chunks_of(frame)

    if format == BIGCARTEL_CSV:
        orders, items = order_frames(store, selection)
        if total:
            total(len(orders))
        written.rows["orders"] = write_bigcartel_csv(store, orders, items, out, zone, progress, written.notes)
        return written
    if table == "all":
        names = [name for name in ALL if name in available_tables()]
        return write_xlsx({name: _lazy(frames_of, name) for name in names}, out, progress)
    if table == "events":
        known = count_rows(store, table, selection)
        if total and known is not None:
            total(known)
        chunks: Any = _or_empty(event_frames(store, selection))
    else:
        chunks = frames_of(table)
    if format == "xlsx":
        return write_xlsx({table: chunks}, out, progress)
    writer = write_csv if format == "csv" else write_parquet
    written.rows[table] = writer(chunks, out, progress)
    return written


def _lazy(make, name):
    """The chunks of one table, made only when its sheet is written (one table in memory at a time)."""
    yield from make(name)


def _or_empty(chunks):
    """The chunks, or one empty events frame when there are none (the header, the schema are still written)."""
    from .sources import empty_events
    empty = True
    for chunk in chunks:
        empty = False
        yield chunk
    if empty:
        yield empty_events()


__all__ = ["ALL", "BIGCARTEL_CSV", "EXTENSIONS", "FORMATS", "HEADER", "TABLES", "Selection", "Written",
           "available_tables", "check", "default_name", "event_frames", "export", "order_frames", "table_frame",
           "write_bigcartel_csv", "write_csv", "write_parquet", "write_xlsx"]
