"""The NumPy group-by behind the reports agrees with pandas' groupby, exactly, on random data."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bchooks.analysis.grouping import Groups, codes, labels_of, ranks

rows = st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 2), st.integers(-(2 ** 40), 2 ** 40),
                          st.integers(0, 30), st.booleans()), max_size=60)


def _pandas(data):
    frame = pd.DataFrame(data or None, columns=["a", "b", "value", "event", "keep"], dtype="int64")
    frame = frame[frame["keep"].astype(bool)]
    return frame.groupby(["a", "b"], sort=True).agg(size=("value", "size"), total=("value", "sum"),
                                                    low=("value", "min"), high=("value", "max"),
                                                    events=("event", "nunique"))


@settings(max_examples=200, deadline=None)
@given(rows)
def test_groups_match_pandas(data):
    expected = _pandas(data)
    a, b, value, event = (np.array([row[k] for row in data], dtype=np.int64) for k in range(4))
    keep = np.array([row[4] for row in data], dtype=bool)
    groups = Groups((a, 5), (b, 3), keep=keep)
    assert groups.count == len(expected)
    assert list(zip(groups.keys[0], groups.keys[1])) == list(expected.index)  # key order: codes ascending
    assert groups.size().tolist() == expected["size"].tolist()
    assert groups.sum(value).tolist() == expected["total"].tolist()
    assert groups.min(value).tolist() == expected["low"].tolist()
    assert groups.max(value).tolist() == expected["high"].tolist()
    assert groups.distinct(event).tolist() == expected["events"].tolist()  # by sorting: events not in runs
    assert all(number == groups.count for number in groups.number[~keep])  # rows left out: their own bucket


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), max_size=30), st.randoms())
def test_distinct_in_runs_matches_pandas(orders, rnd):
    """Line items: each order's rows together (the fast path), the same product possibly twice in an order."""
    data = [(rnd.randrange(4), event) for event, (_, lines) in enumerate(orders) for _ in range(lines)]
    groups = Groups((np.array([g for g, _ in data], dtype=np.int64), 4))
    events = np.array([e for _, e in data], dtype=np.int64)
    expected = pd.DataFrame(data, columns=["g", "e"]).groupby("g")["e"].nunique()
    assert groups.distinct(events).tolist() == expected.tolist()


def test_sums_stay_exact_beyond_float_precision():
    values = np.array([2 ** 53 + 1, 2 ** 53 + 1, 3, 2 ** 60], dtype=np.int64)
    groups = Groups((np.array([0, 0, 1, 1], dtype=np.int64), 2))
    assert groups.sum(values).tolist() == [2 ** 54 + 2, 2 ** 60 + 3]
    odd = np.full(5, 2 ** 51 + 1, dtype=np.int64)  # each below 2**52, the sum odd and above 2**53
    assert Groups((np.zeros(5, dtype=np.int64), 1)).sum(odd).tolist() == [5 * 2 ** 51 + 5]


def test_sparse_key_spaces_group_by_sorting():
    codes_a = np.array([999_999, 5, 999_999, 5, 0], dtype=np.int64)
    groups = Groups((codes_a, 1_000_000), (np.array([0, 1, 0, 1, 0], dtype=np.int64), 2))
    assert groups.keys[0].tolist() == [0, 5, 999_999] and groups.size().tolist() == [1, 2, 2]


def test_codes_labels_and_ranks():
    found, labels = codes(pd.Series(["b", None, "a", "b"], dtype="str"))
    assert found.tolist() == [0, -1, 1, 0] and list(labels) == ["b", "a"]
    named = labels_of(labels, np.array([1, -1, 0]))
    assert named[0] == "a" and pd.isna(named[1]) and named[2] == "b"
    assert ranks(labels, np.array([0, 1, -1, 1])).tolist() == [1, 0, 2, 0]  # missing after every label
    cat = pd.Series(["x", "y", None], dtype="category")
    assert codes(cat)[0].tolist() == [0, 1, -1]


def test_key_spaces_beyond_int64_are_refused_not_wrapped():
    big = np.array([0, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="too many distinct key combinations"):
        Groups((big, 2 ** 31), (big, 2 ** 31), (big, 2 ** 31))
