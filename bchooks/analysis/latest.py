"""The resolved state of orders as frames: which event wins, in what order rows come, and how a delta folds in.

`resolve()` is the one rule everywhere: the newest `updated_at` wins (ties: the body's hash, so arrival order never
matters), `shipped_at` (`refunded_at`) is the earliest `updated_at` that showed the order shipped (refunded), and
an order's line items are those of its winning event. `present()` puts frames in their documented order;
`merge()` folds a resolved delta into a presented state with one gather per frame (a million orders: copies cost
more than the logic).

Categorical columns always hold exactly the labels their rows use, sorted (`tidy`), however the frames were made:
a state merged from deltas equals a rebuild, categories and all.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from .rows import TIE_COLUMNS

TIME = "datetime64[us, UTC]"
_LAST = np.iinfo("int64").max
_NAT = np.iinfo("int64").min  # NaT as int64
#: (column, status column, value): the earliest `updated_at` among an order's events whose status column held
#: that value: when it was first seen shipped, first seen refunded
FIRST_SEEN = (("shipped_at", "shipping_status", "shipped"), ("refunded_at", "payment_status", "refunded"))
MANY_LABELS = 20_000  # categories from which categoricals are united, matched and read back without pandas checks
_NO_LABELS = pd.Index([], dtype="str")


def concat(frames):
    """Concatenate frames keeping categorical columns categorical (their categories united, not yet tidy: every
    caller settles the result, which tidies them once)."""
    frames = [f for f in frames if len(f)] or frames[:1]  # an empty frame (or segment) adds no rows, and its
    # dtypes may have lost their categories in a round trip through the cache
    if len(frames) == 1:
        return frames[0]
    columns = list(frames[0].columns)
    categorical = [c for c in columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    # categoricals are united apart: pandas would turn columns with different categories into objects first
    result = pd.concat([f.drop(columns=categorical) for f in frames], ignore_index=True)
    for column in categorical:
        result[column] = _unite([f[column] for f in frames])
    return result[columns]


def _alike(columns):
    """The parts, those whose categories are empty (every value missing, e.g. the account of a segment of guide
    envelopes: their categories may have lost their dtype) given the others' categories' dtype."""
    dtypes = [c.cat.categories.dtype for c in columns if len(c.cat.categories)]
    if not dtypes:
        return columns
    return [c.cat.set_categories(pd.Index([], dtype=dtypes[0]))
            if not len(c.cat.categories) and c.cat.categories.dtype != dtypes[0] else c for c in columns]


def _unite(columns):
    """One categorical of several; united by Arrow when there are many (pandas hashes each part's categories as
    Python objects: seconds for a million e-mails)."""
    columns = _alike(columns)
    if sum(len(c.cat.categories) for c in columns) < MANY_LABELS:  # few: pandas is quicker to start
        return union_categoricals(columns, ignore_order=True)
    try:
        chunks = pa.chunked_array([pa.DictionaryArray.from_arrays(
            pa.array(c.cat.codes.to_numpy(np.int32), mask=c.isna().to_numpy()),
            _text(c.cat.categories)) for c in columns]).unify_dictionaries()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # categories that are not all text
        return union_categoricals(columns, ignore_order=True)
    codes = np.concatenate([chunk.indices.fill_null(-1).to_numpy() for chunk in chunks.chunks])
    labels = chunks.chunk(0).dictionary if chunks.num_chunks else pa.array([], pa.large_string())
    dtype = unique_labels_dtype(pd.Index(pd.array(labels, dtype="str")))
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def tidy(values):
    """A categorical whose categories are exactly the labels its values use, sorted (as a fresh build makes them),
    so that frames do not depend on how they were made; returned as is when they already are."""
    categorical = values.array if isinstance(values, pd.Series) else values
    codes, labels = categorical.codes, categorical.categories
    if not len(labels) and labels.dtype != _NO_LABELS.dtype:  # every value missing: the categories of a build
        result = pd.Categorical.from_codes(codes, categories=_NO_LABELS)  # (a round trip may have made them objects)
        return pd.Series(result, index=values.index, name=values.name) if isinstance(values, pd.Series) else result
    used = np.bincount(codes[codes >= 0], minlength=len(labels)) > 0
    if used.all() and labels.is_monotonic_increasing:
        return values
    keep = np.flatnonzero(used)
    kept = labels[keep]
    if len(kept) >= MANY_LABELS and isinstance(kept.dtype, pd.StringDtype):
        order = pc.array_sort_indices(_text(kept)).to_numpy()  # (byte order of UTF-8 = code point order)
    else:
        order = kept.argsort()
    position = np.full(len(labels) + 1, -1, dtype=np.int64)  # (the last slot: missing values stay -1)
    position[keep[order]] = np.arange(len(keep))
    result = pd.Categorical.from_codes(position[codes], dtype=unique_labels_dtype(kept[order]), validate=False)
    return pd.Series(result, index=values.index, name=values.name) if isinstance(values, pd.Series) else result


def tidy_frame(frame):
    """`frame` with every categorical column `tidy`."""
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            tidied = tidy(frame[name])
            if tidied is not frame[name]:
                frame[name] = tidied
    return frame


def unique_labels_dtype(labels):
    """The categorical dtype of labels known to be unique (an Arrow dictionary, a union of them): pandas' own
    unchecked constructor when it has one, which skips hashing every label again (a million e-mails: 0.35 s)."""
    fast = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    return fast(labels, False) if fast else pd.CategoricalDtype(labels)


def _accounts(frame):
    """The frame's account column (one shop when it has none: frames built by hand)."""
    if "account_id" in frame:
        return frame["account_id"]
    return pd.Series([""] * len(frame), dtype=object)


def shop_rows(frame, account, known=None):
    """Mask of `frame`'s rows that belong to shop `account` (None: the rows without an account). Rows without an
    account (the guide's format) belong to the shop when the frames hold one (`known`: the accounts of the whole
    frames, by default `frame`'s); beside several shops they form one of their own, `account=None`."""
    if "account_id" not in frame:  # frames built by hand without accounts: one shop
        return np.ones(len(frame), dtype=bool)
    accounts = frame["account_id"]
    missing = accounts.isna().to_numpy()
    if account is None:
        return missing if len(_known(accounts) if known is None else known) != 1 else np.zeros(len(frame), bool)
    mine = (accounts == str(account)).to_numpy(dtype=bool, na_value=False)
    known = _known(accounts) if known is None else known
    return mine | missing if missing.any() and list(known) == [str(account)] else mine


def _known(accounts):
    return accounts.dropna().unique()


def order_keys(*frames):
    """Integer codes of each row's order, the same across `frames`: an order is (account_id, order_id), since two
    shops may use the same order numbers. Events without an account (the guide's format) belong to the shop when
    the frames hold one; beside several shops they form one of their own. One array for one frame, a list for
    several."""
    accounts = pd.concat([_accounts(f) for f in frames], ignore_index=True) if len(frames) > 1 else \
        _accounts(frames[0])
    known = accounts.dropna().unique()
    if len(known) == 1:
        accounts = accounts.fillna(known[0])
    ids = pd.concat([f["order_id"] for f in frames], ignore_index=True) if len(frames) > 1 else frames[0]["order_id"]
    account_codes, accounts_seen = pd.factorize(accounts, use_na_sentinel=False)
    id_codes, _ = pd.factorize(ids, use_na_sentinel=False)
    combined, _ = pd.factorize(id_codes.astype(np.int64) * (len(accounts_seen) + 1) + account_codes)
    if len(frames) == 1:
        return combined
    bounds = np.cumsum([0, *(len(f) for f in frames)])
    return [combined[bounds[n]:bounds[n + 1]] for n in range(len(frames))]


def _first_seen(orders, name):
    """A first-seen column as int64 µs (missing: NaT)."""
    values = orders[name].to_numpy("datetime64[us]").view("int64").copy()
    values[orders[name].isna().to_numpy()] = _NAT
    return values


def _winners(orders):
    """(row of each order's winning event, by order of first appearance; {first-seen column: its value for each
    order as int64 µs}). A first-seen column (`shipped_at`, `refunded_at`) is the earliest `updated_at` among an
    order's events that showed it so."""
    order = order_keys(orders)  # integers from here on: no string sorting of a million rows
    seen = {name: _first_seen(orders, name) for name, _, _ in FIRST_SEEN if name in orders}
    counts = np.bincount(order)
    if counts.max(initial=1) == 1:  # one event per order (a fresh shop's first build, most deltas)
        return np.arange(len(order)), seen  # (codes follow first appearance: row n has code n)
    # orders with several events: the newest wins (ties: the body's hash)
    rows = np.flatnonzero(counts[order] > 1)
    updated = orders["updated_at"].to_numpy("datetime64[us]").view("int64")[rows]  # missing (NaT) sorts first
    ties = [orders[name].to_numpy()[rows] for name in reversed(TIE_COLUMNS) if name in orders]  # (least first)
    ranking = rows[np.lexsort((*ties, updated, order[rows]))]
    last = ranking[np.append(order[ranking][1:] != order[ranking][:-1], True)]
    winner = np.empty(len(counts), dtype=np.int64)
    winner[order] = np.arange(len(order))  # right for single-event orders
    winner[order[last]] = last
    several = np.flatnonzero(counts > 1)
    result = {}
    for name, values in seen.items():
        earliest = np.full(len(counts), _LAST, dtype=np.int64)
        np.minimum.at(earliest, order[rows], np.where(values[rows] == _NAT, _LAST, values[rows]))
        first = values[winner]
        first[several] = np.where(earliest[several] == _LAST, _NAT, earliest[several])
        result[name] = first
    return winner, result


def _times(values):
    return pd.Series(values.view("datetime64[us]")).dt.tz_localize("UTC").astype(TIME)


def resolve(orders, items):
    """One row per order (its latest state), and the line items of each winning event."""
    if not len(orders):
        return orders.reset_index(drop=True), items.iloc[:0].reset_index(drop=True)
    last, seen = _winners(orders)
    latest = orders.take(last).reset_index(drop=True)
    for name, values in seen.items():
        latest[name] = _times(values)
    return latest, items[items["event_id"].isin(latest["event_id"])].reset_index(drop=True)


def _ranking(key, ids_at):
    """Rows by `key`, ties by order id (`ids_at(rows)`: the ids of those rows)."""
    order = np.argsort(key, kind="stable")
    tied = np.flatnonzero(np.diff(key[order]) == 0)
    if len(tied):  # equal created_at (rare): order_id decides, within each run of equal times
        rows = np.unique(np.concatenate([tied, tied + 1]))
        runs = np.cumsum(np.append(True, np.diff(rows) > 1))
        ids = ids_at(order[rows])
        order[rows] = order[rows][sorted(range(len(rows)), key=lambda n: (runs[n], ids[n]))]
    return order


def _item_rows(events, item_events, lines):
    """Items in their orders' order (orders' `events`), then by line."""
    steps = np.diff(item_events)
    if len(item_events) and (steps >= 0).all() and (np.diff(lines)[steps == 0] > 0).all():
        # grouped by event, lines in order (as a build reads them): whole blocks move, nothing is sorted
        starts, lengths = _blocks(events, item_events)
        return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    by_event = np.argsort(events, kind="stable")
    position = by_event[np.searchsorted(events, item_events, sorter=by_event)]
    return np.lexsort((lines, position))


def present(orders, items):
    """The frames' documented order: orders by `created_at`, then `order_id`; items in their orders' order,
    then by `line`. Items are matched to orders by `event_id` (integers: no string work on millions of rows)."""
    ids = orders["order_id"]
    orders = orders.take(_ranking(_order_key(orders), lambda rows: ids.iloc[rows].to_numpy(dtype=object)))
    orders = orders.reset_index(drop=True)
    rows = _item_rows(orders["event_id"].to_numpy(), items["event_id"].to_numpy(), items["line"].to_numpy())
    return tidy_frame(orders), tidy_frame(items.take(rows).reset_index(drop=True))


def settle(orders, items):
    """`present(*resolve(orders, items))` with one copy of each frame instead of two (a first build: millions
    of rows)."""
    if not len(orders):
        return present(*resolve(orders, items))
    last, seen = _winners(orders)
    ids = orders["order_id"]
    order = _ranking(_order_key(orders)[last], lambda rows: ids.iloc[last[rows]].to_numpy(dtype=object))
    latest = orders.take(last[order]).reset_index(drop=True)
    for name, values in seen.items():
        latest[name] = _times(values[order])
    events, item_events = latest["event_id"].to_numpy(), items["event_id"].to_numpy()
    kept = np.flatnonzero(items["event_id"].isin(events).to_numpy())
    rows = kept[_item_rows(events, item_events[kept], items["line"].to_numpy()[kept])]
    return tidy_frame(latest), tidy_frame(items.take(rows).reset_index(drop=True))


def merge(state, delta):
    """Fold a resolved delta into a resolved, presented state; the result is presented too."""
    (orders, items), (new_orders, new_items) = state, delta
    if not len(new_orders):
        return orders, items
    base_keys, new_keys = order_keys(orders, new_orders)
    touched = np.isin(base_keys, new_keys)
    old = np.flatnonzero(touched)
    old_items = items["event_id"].isin(orders["event_id"].to_numpy()[old]).to_numpy()
    combined, combined_items = settle(concat([orders.take(old), new_orders]), concat([items[old_items], new_items]))
    rows = _interleave(orders, np.flatnonzero(~touched), combined)
    events = np.concatenate([orders["event_id"].to_numpy(), combined["event_id"].to_numpy()])[rows]
    from_base = rows < len(orders)
    # each order's line items: its run in the base items (untouched orders) or in the combined items
    starts, lengths = np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    for mask, own_items, offset in ((from_base, items, 0), (~from_base, combined_items, len(items))):
        found_starts, lengths[mask] = _blocks(events[mask], own_items["event_id"].to_numpy())
        starts[mask] = found_starts + offset
    item_rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    return tidy_frame(_gather(orders, combined, rows)), tidy_frame(_gather(items, combined_items, item_rows))


def _order_key(orders):
    """created_at as int64 with missing times last."""
    key = orders["created_at"].to_numpy("datetime64[us]").view("int64").copy()
    key[orders["created_at"].isna().to_numpy()] = _LAST
    return key


def _interleave(orders, kept, extra):
    """Rows of [orders; extra] in the documented order: the sorted `orders` rows `kept`, and every `extra` row
    (extra sorted too) put in its place by created_at, then order_id. Indices >= len(orders) are extra's."""
    base_key, extra_key = _order_key(orders)[kept], _order_key(extra)
    positions = np.searchsorted(base_key, extra_key, side="left")
    ties = np.flatnonzero((positions < len(base_key)) & (base_key[np.minimum(positions, len(base_key) - 1)]
                                                         == extra_key)) if len(base_key) else []
    base_ids, extra_ids = orders["order_id"], extra["order_id"]
    for n in ties:  # equal created_at (rare): order_id decides
        while (positions[n] < len(base_key) and base_key[positions[n]] == extra_key[n]
               and base_ids.iloc[kept[positions[n]]] < extra_ids.iloc[n]):
            positions[n] += 1
    return np.insert(kept, positions, np.arange(len(orders), len(orders) + len(extra)))


def _blocks(events, item_events):
    """(start, length) of each event's run of line items in `item_events` (items grouped by event)."""
    if not len(item_events):
        return np.zeros(len(events), dtype=np.int64), np.zeros(len(events), dtype=np.int64)
    heads = np.flatnonzero(np.concatenate(([True], item_events[1:] != item_events[:-1])))
    run_events, run_lengths = item_events[heads], np.diff(np.concatenate((heads, [len(item_events)])))
    by_event = np.argsort(run_events, kind="stable")
    at = by_event[np.minimum(np.searchsorted(run_events, events, sorter=by_event), len(heads) - 1)]
    found = run_events[at] == events
    return np.where(found, heads[at], 0), np.where(found, run_lengths[at], 0)


def _gather(base, extra, rows):
    """Rows `rows` of [base; extra] as one frame, column by column; categorical columns keep base's categories
    (with extra's new ones added) instead of uniting and re-checking all of them. Most rows are base rows in their
    order: text is copied run by run, not row by row."""
    runs = _runs(rows)
    columns = {}
    for name in base.columns:
        first, second = base[name], extra[name]
        if isinstance(first.dtype, pd.CategoricalDtype):
            dtype, codes = _codes_with(first, second)
            columns[name] = pd.Categorical.from_codes(codes[rows], dtype=dtype, validate=False)
        elif isinstance(first.dtype, pd.StringDtype) and first.dtype.storage == "pyarrow":
            both = pa.chunked_array([*_text_chunks(first), *_text_chunks(second)], pa.large_string())
            pieces = [chunk for start, length in runs for chunk in both.slice(start, length).chunks]
            text = pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
            columns[name] = pd.array(text, dtype=first.dtype)
        else:
            columns[name] = pd.concat([first, second], ignore_index=True).take(rows).array
    return pd.DataFrame(columns)


def _text_chunks(values):
    """The Arrow arrays under text values (pandas' own data: no copy), as large strings."""
    arrow = pa.array(values.array)
    return [c.cast(pa.large_string()) for c in (arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow])]


def _text(values):
    chunks = _text_chunks(values)
    return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_string())


def _runs(rows):
    """(start, length) of each run of consecutive indices in `rows`."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.concatenate(([0], breaks))]
    return list(zip(starts.tolist(), np.diff(np.concatenate(([0], breaks, [len(rows)]))).tolist()))


def _codes_with(first, second):
    """(dtype, codes of [first; second]): first's categories, with second's new labels added after them."""
    labels = first.cat.categories
    if len(labels) < MANY_LABELS or not isinstance(labels.dtype, pd.StringDtype):  # few: pandas starts quicker
        added = pd.Index(second.dropna().unique()).difference(labels)
        dtype = first.dtype if not len(added) else pd.CategoricalDtype(labels.append(added))
        return dtype, np.concatenate([first.cat.codes.to_numpy(), pd.Categorical(second, dtype=dtype).codes])
    # many labels (e-mails): Arrow matches second's values against them without Python objects
    known, values = _text(labels), _text(second.astype("str"))
    found = pc.index_in(values, value_set=known)
    new = pc.unique(pc.filter(values, pc.and_(pc.is_null(found), pc.is_valid(values))))
    new = pc.take(new, pc.array_sort_indices(new))  # (in sorted order, as `difference` gives them)
    if len(new):
        known = pa.concat_arrays([known, new])
        found = pc.index_in(values, value_set=known)
        labels = labels.append(pd.Index(pd.array(new, dtype=labels.dtype)))
    codes = np.concatenate([first.cat.codes.to_numpy(np.int64), found.fill_null(-1).to_numpy().astype(np.int64)])
    return unique_labels_dtype(labels), codes
