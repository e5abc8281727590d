"""The order projection: the latest state of every order, kept incrementally in a columnar cache.

The cache is a folder beside the database (`bchooks.db-analysis/`; for a PostgreSQL store, one per database under
`~/.cache/bchooks/analysis/`: the cache stays on the analyst's machine) of Arrow IPC segments (uncompressed, read
by memory map: loading is nearly a copy-free conversion): a base and small deltas,
each already resolved to one row per order, and a manifest with the last event id read (the watermark).
`refresh()` reads only the events stored since then; a large first build runs in several processes.
`resolve()` is the one rule everywhere: the newest `updated_at` wins (ties: the body's hash, so arrival order never
matters), `shipped_at` (`refunded_at`) is the earliest `updated_at` that showed the order shipped (refunded), and
an order's line items are those of its winning event. Deleting the folder (or `rebuild()`) gives the same frames.
"""

import fcntl
import heapq
import json
import logging
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import feather

from .rows import ORDER_TYPES, TIE_COLUMNS, Batch, cents_column
from ..store import order_rows_at
from ..wire import storable_text
from .latest import FIRST_SEEN, MANY_LABELS, TIME, concat, merge, resolve, settle, tidy, unique_labels_dtype

log = logging.getLogger("bchooks.analysis.cache")

#: 1: Parquet segments; 2: Arrow IPC; 3: the tie-break on the whole body digest; 4: line items carry the account;
#: 5: discount_code, refunded_at, a generation id
FORMAT = 5
CHUNK = 100_000  # events per build task
#: cache folder -> ((generation, segments), (orders, items)): the state this process read last, per cache
_REMEMBERED: dict = {}
PARALLEL_FROM = 200_000  # events; below this a build runs in-process
ORDER_SCHEMA = {
    "order_id": "str", "account_id": "str", "event_id": "int64", "updated_at": TIME, "created_at": TIME,
    "completed_at": TIME, "currency": "category", "country": "category", "country_name": "str",
    "customer_email": "category", "customer_name": "str", "item_count": "Int64", "item_total_cents": "Int64",
    "discount_total_cents": "Int64", "shipping_total_cents": "Int64", "tax_total_cents": "Int64",
    "total_cents": "Int64", "shipping_status": "category", "payment_status": "category", "discount_code": "category",
    **{name: "uint64" for name in TIE_COLUMNS},
}
ITEM_SCHEMA = {
    "order_id": "str", "account_id": "category", "event_id": "int64", "line": "int64", "product_id": "str",
    "product_name": "category", "option_name": "category", "quantity": "int64", "price_cents": "Int64",
    "total_cents": "Int64", "currency": "category", "payment_status": "category",
}
_FROM_ORDER = ("order_id", "account_id", "event_id", "currency", "payment_status")


def _column(values, dtype, money=False):
    """A typed column of Python values; text goes through Arrow (several times faster than pandas' own path).
    Text that cannot be written as UTF-8 (a lone surrogate escape, which the receiver accepts) is kept as its
    escape, as the store's text columns keep it (`storable_text`): `"\\ud83d"` becomes the six characters."""
    try:
        return _typed_column(values, dtype, money)
    except UnicodeEncodeError:  # (rare: only then is every value checked)
        return _typed_column([storable_text(v) if type(v) is str else v for v in values], dtype, money)


def _typed_column(values, dtype, money):
    if money:
        return cents_column(values)
    if dtype == TIME:
        try:  # Arrow's ISO-8601 cast is 10x faster; anything it refuses (one bad value) goes to pandas
            return pd.Series(pc.cast(pa.array(values, type=pa.string()), pa.timestamp("us", "UTC")).to_pandas(),
                             dtype=TIME)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            text = pd.Series(values, dtype="str")
            return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce").astype(TIME)
    if dtype in ("int64", "uint64"):
        return pd.Series(np.fromiter(values, dtype=dtype, count=len(values)))
    if dtype not in ("str", "category"):
        return pd.Series(values, dtype=dtype)
    try:
        text = pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text (e.g. a number stored by another program)
        return pd.Series(values, dtype=dtype)
    if dtype == "str":
        return pd.Series(pd.array(text, dtype="str"))
    # a category: sorted categories, as pandas makes them
    encoded = text.dictionary_encode()
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    position = np.empty(len(order) + 1, dtype=np.int64)
    position[order], position[-1] = np.arange(len(order)), -1  # missing values: code -1
    codes = position[encoded.indices.fill_null(len(order)).to_numpy()]
    labels = pd.Index(pd.array(encoded.dictionary.take(pa.array(order)), dtype="str"))
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels))


def typed(batch):
    """Raw (one row per event) typed frames of a `Batch`."""
    orders = pd.DataFrame({name: _column(batch.orders[name], dtype, name.endswith("_cents"))
                           for name, dtype in ORDER_SCHEMA.items()})
    for name, column, value in FIRST_SEEN:
        orders[name] = orders["updated_at"].where(orders[column] == value)
    row = np.fromiter(batch.items["order_row"], dtype=np.int64, count=len(batch.items["order_row"]))
    items = {}
    for name, dtype in ITEM_SCHEMA.items():
        if name in _FROM_ORDER:  # the item's order's value (categories: those the items use, sorted as before)
            column = orders[name]
            if dtype == "category" and not isinstance(column.dtype, pd.CategoricalDtype):  # (the account: a few)
                column = pd.Series(pd.Categorical(column))
            column = column.take(row).reset_index(drop=True)
            items[name] = column.cat.remove_unused_categories() if dtype == "category" else column
        else:
            items[name] = _column(batch.items[name], dtype, name.endswith("_cents"))
    return orders, pd.DataFrame(items)


def with_archive(stored, archive, first_id, last_id):
    """The stored order rows, with the archived ones of the same id range (`archive`: an archive directory, or
    None) merged in id order; an id both hold (an event restored) once."""
    return stored if archive is None else _merged(stored, archive, first_id, last_id)


def _merged(stored, archive, first_id, last_id):
    from ..archives.files import order_rows
    previous = None
    for row in heapq.merge(stored, order_rows(archive, first_id, last_id, ORDER_TYPES), key=lambda row: row[0]):
        if row[0] != previous:
            previous = row[0]
            yield row


def read_range(source, first_id, last_id, archive=None):
    """Typed raw frames (one row per event) of the order events with first_id <= id <= last_id (`source`: the
    store's `source`, a SQLite path or a PostgreSQL URL; `archive`: an archive directory read too, or None)."""
    batch = Batch()
    batch.extend(with_archive(order_rows_at(source, first_id, last_id, ORDER_TYPES), archive, first_id, last_id))
    return typed(batch)


def build_range(source, first_id, last_id, archive=None):
    """Resolved frames of the order events with first_id <= id <= last_id (a worker process's task)."""
    return resolve(*read_range(source, first_id, last_id, archive))


def default_cache_dir(store):
    """Beside a SQLite file; for a database server, a folder of this machine's per database."""
    if store.engine == "sqlite":
        return Path(f"{store.path}-analysis")
    import hashlib
    from urllib.parse import urlsplit
    parts = urlsplit(store.path)
    name = "-".join(p for p in (parts.hostname, str(parts.port or ""), parts.path.strip("/")) if p)
    digest = hashlib.sha256(store.path.encode()).hexdigest()[:8]
    return Path.home() / ".cache" / "bchooks" / "analysis" / f"{name}-{digest}"


def _frame(table):
    """A cached table as a DataFrame. A categorical with many categories (customer e-mails) is built from the stored
    dictionary as it is: it is unique by construction, and pandas would hash a million e-mails to check it again."""
    built = {}
    for index, field in enumerate(table.schema):
        text = pa.types.is_dictionary(field.type) and pa.types.is_large_string(field.type.value_type)
        if text and sum(len(c.dictionary) for c in table[index].chunks) >= MANY_LABELS:
            chunk = table[index].combine_chunks()
            dtype = unique_labels_dtype(pd.Index(pd.array(chunk.dictionary, dtype="str")))
            codes = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            built[field.name] = pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
            table = table.set_column(index, field.name, pa.nulls(len(table), pa.int8()))  # (placeholder)
    frame = table.to_pandas(split_blocks=True)
    for name, column in built.items():
        frame[name] = column
    for name in frame.columns:  # every value missing: Arrow gives its categories as objects, a build as text
        if isinstance(frame[name].dtype, pd.CategoricalDtype) and not len(frame[name].cat.categories):
            frame[name] = tidy(frame[name])
    return frame


class Projection:
    def __init__(self, store, cache_dir=None, *, workers=None, archive=None):
        self.store = store
        self.archive = None if archive is None else str(Path(archive).expanduser().resolve())
        memory = store.engine == "sqlite" and (store.path in ("", ":memory:") or store.path.startswith("file::memory:"))
        self.cache_dir = None if memory else Path(cache_dir or default_cache_dir(store))
        self.workers = workers or min(4, os.cpu_count() or 1)
        self._state = None  # ((generation, segments), (orders, items)) as last loaded (also in `_REMEMBERED`)
        self._memory = None  # the state itself when there is no cache folder

    def __repr__(self):
        return f"Projection({self.store.path!r}, cache={str(self.cache_dir) if self.cache_dir else None!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    # -- the cache folder
    @contextmanager
    def _locked(self):
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with open(self.cache_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _manifest(self):
        try:
            manifest = json.loads((self.cache_dir / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("format") != FORMAT or manifest.get("archive") != self.archive:
            return None  # (built with another archive included, or none: built again)
        mark = manifest.get("watermark", 0)
        if mark:  # the database was replaced or emptied: the cache describes other events
            event = self.store.get(mark)
            found = event.body_sha256 if event is not None else None
            if found is None and self.archive is not None:  # (the watermark's event was archived since)
                from ..archives.files import event_found
                found = event_found(self.archive, mark)
            if found != manifest.get("watermark_sha256"):
                return None
        return manifest

    def _write(self, manifest, name, frames):
        orders, items = frames
        for kind, frame in (("orders", orders), ("items", items)):
            feather.write_feather(frame.reset_index(drop=True), self.cache_dir / f"{kind}-{name}.arrow",
                                  compression="uncompressed", chunksize=max(1, len(frame)))  # one batch: no joins
        manifest["segments"].append(name)

    def _save(self, manifest):
        temporary = self.cache_dir / "manifest.json.tmp"
        temporary.write_text(json.dumps(manifest))
        os.replace(temporary, self.cache_dir / "manifest.json")
        for path in self.cache_dir.glob("*.arrow"):  # segments no longer listed (compacted away)
            if path.stem.split("-", 1)[1] not in manifest["segments"]:
                path.unlink()

    def _read(self, name):
        return tuple(_frame(feather.read_table(self.cache_dir / f"{kind}-{name}.arrow", memory_map=True))
                     for kind in ("orders", "items"))

    # -- building
    def _fresh(self, after_id, last_id):
        """Resolved and presented frames of the order events after `after_id` up to `last_id`."""
        if self.cache_dir is None:
            batch = Batch()
            batch.extend(with_archive(self.store.order_rows(after_id + 1, last_id, ORDER_TYPES), self.archive,
                                      after_id + 1, last_id))
            return settle(*typed(batch))
        if last_id - after_id < PARALLEL_FROM or self.workers < 2:
            return settle(*read_range(self.store.source, after_id + 1, last_id, self.archive))
        tasks = -(-(last_id - after_id) // CHUNK)
        tasks += -tasks % self.workers  # equal tasks, as many for every worker: no worker left alone at the end
        bounds = np.linspace(after_id, last_id, tasks + 1).astype(np.int64).tolist()
        with ProcessPoolExecutor(self.workers, mp_context=get_context("forkserver")) as pool:
            parts = list(pool.map(build_range, [self.store.source] * tasks, [b + 1 for b in bounds[:-1]], bounds[1:],
                                  [self.archive] * tasks))
        return settle(concat([p[0] for p in parts]), concat([p[1] for p in parts]))

    def refresh(self):
        """Read the events stored since the last refresh into the cache; returns how many event ids it covered.
        A cache folder that cannot be written (read-only, full) is reported once and analysis goes on in memory."""
        last_id, last_sha = self.store.last_event()
        if self.cache_dir is not None:
            try:
                return self._refresh_cache(last_id, last_sha)
            except OSError as error:
                self._without_cache(error)
        mark = self._memory[0] if self._memory else 0
        if last_id > mark:
            delta = self._fresh(mark, last_id)
            self._memory = (last_id, merge(self._memory[1], delta) if self._memory else delta)
        return last_id - mark

    def _without_cache(self, error):
        log.warning("cannot use the analysis cache %s (%s): analysing in memory, reading every event each time",
                    self.cache_dir, error.strerror or error)
        self.cache_dir = None

    def _refresh_cache(self, last_id, last_sha):
        with self._locked():
            manifest = self._manifest()
            if manifest is None:
                for path in [*self.cache_dir.glob("*.arrow"), *self.cache_dir.glob("*.parquet")]:
                    path.unlink()  # (Parquet: the segments of format 1)
                manifest = {"format": FORMAT, "archive": self.archive, "watermark": 0, "watermark_sha256": None,
                            "segments": [], "next": 1,
                            "base_rows": 0, "delta_rows": 0, "generation": uuid.uuid4().hex}
            mark = manifest["watermark"]
            if last_id <= mark:
                return 0
            delta = self._fresh(mark, last_id)
            self._write(manifest, f"{manifest['next']:06d}", delta)
            manifest["next"] += 1
            if len(manifest["segments"]) == 1:
                manifest["base_rows"] = len(delta[0])
            else:
                manifest["delta_rows"] += len(delta[0])
            manifest.update(watermark=last_id, watermark_sha256=last_sha)
            if len(manifest["segments"]) > 8 or manifest["delta_rows"] > max(1000, manifest["base_rows"] // 5):
                self._compact(manifest, self._load(manifest))
            self._save(manifest)
            return last_id - mark

    def _compact(self, manifest, frames):
        """Make the merged `frames` the one base segment (the caller saves the manifest)."""
        manifest.update(segments=[], base_rows=len(frames[0]), delta_rows=0)
        self._write(manifest, f"{manifest['next']:06d}", frames)
        manifest["next"] += 1
        self._remember(manifest, frames)

    def _remember(self, manifest, frames):
        """Keep the state of these segments for this process's next read (a notebook reads again and again)."""
        self._state = ((manifest.get("generation"), list(manifest["segments"])), frames)
        _REMEMBERED[str(self.cache_dir)] = self._state

    def rebuild(self):
        """Forget the cache and read every event again."""
        self._state = self._memory = None
        if self.cache_dir is not None:
            _REMEMBERED.pop(str(self.cache_dir), None)
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        return self.refresh()

    # -- reading
    def _load(self, manifest):
        """The merged state of the manifest's segments: what this process read before, with only the segments
        written since folded in (themselves merged first, small with small, then once into the large state)."""
        generation, segments = manifest.get("generation"), manifest["segments"]
        known = self._state or _REMEMBERED.get(str(self.cache_dir))
        if known and known[0] == (generation, segments):
            return known[1]
        if known and generation and known[0][0] == generation and known[0][1] \
                and segments[:len(known[0][1])] == known[0][1]:
            state, new = known[1], segments[len(known[0][1]):]
        else:
            state, new = self._read(segments[0]), segments[1:]
        if new:
            delta = self._read(new[0])
            for name in new[1:]:
                delta = merge(delta, self._read(name))
            state = merge(state, delta)
        self._remember(manifest, state)
        return state

    def frames(self):
        """(orders, items): refreshed, typed, orders by `created_at` then `order_id`, items by order then line."""
        self.refresh()
        state = None
        if self.cache_dir is not None:
            try:
                state = self._cached_state()
            except OSError as error:
                self._without_cache(error)
                self.refresh()
        if self.cache_dir is None:
            state = self._memory[1] if self._memory else settle(*typed(Batch()))
        orders, items = state
        # (new frames over the same columns: copy on write keeps the state remembered for the next read as it is,
        # whatever the caller does to them)
        return orders.drop(columns=list(TIE_COLUMNS)), items.copy(deep=False)

    def _cached_state(self):
        """The cached state, deltas merged in memory: a read never rewrites the cache (a million orders: seconds
        of writing); `refresh` makes the merged state the base once the deltas grow (`_refresh_cache`)."""
        with self._locked():
            manifest = self._manifest()
            if not manifest or not manifest["segments"]:
                return settle(*typed(Batch()))
            return self._load(manifest)
