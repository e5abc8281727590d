"""The state rules on integers, against plain Python versions of the same rules."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from bchooks.analysis.latest import TIME, _item_rows, _winners

events = st.lists(st.tuples(st.sampled_from("ABCDE"), st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2),
                            st.booleans()), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(events)
def test_winners_are_the_newest_event_and_the_earliest_shipping(rows):
    stamp = lambda t: None if t is None else pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=t)  # noqa
    orders = pd.DataFrame({
        "order_id": pd.Series([r[0] for r in rows], dtype="str"),
        "updated_at": pd.Series([stamp(r[1]) for r in rows], dtype=TIME),
        "rank_tie": [r[2] * 100 + n for n, r in enumerate(rows)],
        "shipped_at": pd.Series([stamp(r[1]) if r[3] else None for r in rows], dtype=TIME),
        "refunded_at": pd.Series([stamp(r[1]) if not r[3] else None for r in rows], dtype=TIME),
    })
    last, seen = _winners(orders)
    ids = list(dict.fromkeys(r[0] for r in rows))  # order of first appearance
    for k, oid in enumerate(ids):
        mine = [n for n, r in enumerate(rows) if r[0] == oid]
        newest = max(mine, key=lambda n: (-1 if rows[n][1] is None else rows[n][1], rows[n][2] * 100 + n))
        assert last[k] == newest
        for name, flag in (("shipped_at", True), ("refunded_at", False)):
            days = [rows[n][1] for n in mine if rows[n][3] == flag and rows[n][1] is not None]
            expected = stamp(min(days)) if days else None
            value = seen[name][k]
            got = None if value == np.iinfo("int64").min else pd.Timestamp(value, unit="us", tz="UTC")
            assert got == expected, name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), max_size=8, unique=True), st.lists(st.integers(0, 4), max_size=25),
       st.randoms())
def test_items_follow_their_orders_whether_grouped_or_not(order_events, item_events, rng):
    events = np.array(order_events, dtype=np.int64)
    items = [(e, line) for e in sorted(set(item_events) & set(order_events))
             for line in range(1, item_events.count(e) + 1)]  # grouped by event, lines in order (a build)
    expected = sorted(range(len(items)), key=lambda n: (order_events.index(items[n][0]), items[n][1]))
    grouped = _item_rows(events, np.array([i[0] for i in items], dtype=np.int64),
                         np.array([i[1] for i in items], dtype=np.int64))
    assert list(grouped) == expected
    shuffled = list(range(len(items)))
    rng.shuffle(shuffled)
    rows = _item_rows(events, np.array([items[n][0] for n in shuffled], dtype=np.int64),
                      np.array([items[n][1] for n in shuffled], dtype=np.int64))
    assert [shuffled[n] for n in rows] == expected


def test_a_tie_is_broken_by_the_whole_digest_not_its_first_bits():
    """Two bodies of one order with the same updated_at whose digests share their first 60 bits (and more): the
    greater whole digest wins, whichever arrived first."""
    from bchooks.analysis.cache import typed
    from bchooks.analysis.rows import Batch
    body = b'{"account_id":"1","type":"order.updated","payload":{"id":"A","updated_at":"2026-01-01T00:00:00.000Z"}}'
    low, high = "ab" * 24 + "00" * 8, "ab" * 24 + "00" * 7 + "01"  # equal in their first 192 bits
    for digests in ((low, high), (high, low)):
        batch = Batch()
        for n, digest in enumerate(digests, start=1):
            batch.add(n, "1", body, digest, "2026-01-01T00:00:00.000Z")
        orders, _ = typed(batch)
        last, _ = _winners(orders)
        assert [digests[i] for i in last] == [high]
