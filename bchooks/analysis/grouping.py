"""Group-by on integer codes with NumPy: the fast path of the reports over millions of rows.

pandas' groupby on categoricals and strings spends most of its time on hashing and on building objects; the
reports only need group numbers, exact integer sums and first/last rows, which `bincount` and `minimum.at` give
in one pass. Missing values get their own code (they are never dropped silently here; callers filter first).
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_LOW_BITS = 26


def codes(series):
    """(integer codes, labels) of a column: categorical codes as they are, anything else factorized; -1 = missing."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.cat.codes.to_numpy(), series.cat.categories  # int8/16/32 as stored: no copy
    found, labels = pd.factorize(series)
    return found, pd.Index(labels)


class Groups:
    """Rows grouped by several code columns. `number[i]` is row i's group (0..count-1, in key order; `count` for
    rows left out by `keep`); `keys[k]` the code of column k for each group (-1 for missing).

    Leaving rows out with `keep` instead of filtering every column first saves a copy of each (millions of rows:
    fresh memory costs more than the arithmetic)."""

    def __init__(self, *columns, keep=None):
        """`columns`: (codes, number of labels) pairs, all of the same length; `keep`: mask of the rows to group."""
        rows = len(columns[0][0]) if columns else 0
        key = np.zeros(rows, dtype=np.int64)
        space = 1
        for found, size in columns:
            key *= size + 1
            key += found
            key += 1  # code -1 (missing) becomes digit 0
            space *= size + 1
        if space >= 2 ** 62:  # the combined key would overflow int64
            raise ValueError(f"too many distinct key combinations to group ({space:,})")
        if keep is not None:
            key[~keep] = space  # one more slot, for the rows left out
        if space <= 4 * rows + 4096:  # a dense key space: one counting pass instead of a sort
            present = np.flatnonzero(np.bincount(key, minlength=space + 1)[:space])
            remap = np.full(space + 1, len(present), dtype=np.int64)
            remap[present] = np.arange(len(present))
            self.number, combined = remap[key], present
        else:
            combined, self.number = np.unique(key, return_inverse=True)
            if len(combined) and combined[-1] == space:
                combined = combined[:-1]
        self.count = len(combined)
        self.keys = []
        for found, size in reversed(columns):
            self.keys.insert(0, combined % (size + 1) - 1)
            combined = combined // (size + 1)

    def size(self):
        return np.bincount(self.number, minlength=self.count + 1)[:self.count]

    def sum(self, values):
        """Exact int64 sums per group (when a float sum could round, in two 26-bit halves that cannot)."""
        values = np.asarray(values, dtype=np.int64)
        largest = int(np.abs(values).max()) if len(values) else 0
        if largest >= 2 ** 52:
            return pd.Series(values).groupby(self.number).sum().reindex(range(self.count), fill_value=0).to_numpy()
        if largest * len(values) < 2 ** 53:  # every partial sum is an exact float
            return np.bincount(self.number, values, self.count + 1)[:self.count].astype(np.int64)
        low = np.bincount(self.number, values & ((1 << _LOW_BITS) - 1), self.count + 1)[:self.count]
        high = np.bincount(self.number, values >> _LOW_BITS, self.count + 1)[:self.count]
        return low.astype(np.int64) + (high.astype(np.int64) << _LOW_BITS)

    def min(self, values, initial=np.iinfo(np.int64).max):
        result = np.full(self.count + 1, initial, dtype=np.int64)
        np.minimum.at(result, self.number, np.asarray(values, dtype=np.int64))
        return result[:self.count]

    def max(self, values, initial=np.iinfo(np.int64).min):
        result = np.full(self.count + 1, initial, dtype=np.int64)
        np.maximum.at(result, self.number, np.asarray(values, dtype=np.int64))
        return result[:self.count]

    def first_row(self):
        return self.min(np.arange(len(self.number)))

    def last_row(self):
        return self.max(np.arange(len(self.number)))

    def distinct(self, values, max_run=16):
        """Per group, how many distinct `values` (int64 >= 0) it has. Fast when equal values sit together in
        short runs (line items of one order); otherwise by sorting."""
        values = np.asarray(values, dtype=np.int64)
        if not len(values):
            return np.zeros(self.count, dtype=np.int64)
        starts = np.flatnonzero(np.diff(values)) + 1
        runs = np.diff(np.concatenate(([0], starts, [len(values)])))
        heads = np.concatenate(([0], starts))
        if runs.max() <= max_run and values.min() >= 0 and np.bincount(values[heads]).max() == 1:
            repeat = np.zeros(len(values), dtype=bool)  # an earlier row of the same run has the same group
            for lag in range(1, int(runs.max())):
                repeat[lag:] |= (values[lag:] == values[:-lag]) & (self.number[lag:] == self.number[:-lag])
            return np.bincount(self.number[~repeat], minlength=self.count + 1)[:self.count]
        order = np.lexsort((values, self.number))
        number, values = self.number[order], values[order]
        new = np.ones(len(values), dtype=bool)
        new[1:] = (number[1:] != number[:-1]) | (values[1:] != values[:-1])
        return np.bincount(number[new], minlength=self.count + 1)[:self.count]


def labels_of(labels, found):
    """The labels for codes (missing for -1), as a str array (gathered by Arrow: no Python strings)."""
    found = np.asarray(found)
    if not len(labels):
        return pd.array(np.full(len(found), None), dtype="str")
    taken = pa.array(labels).take(pa.array(np.maximum(found, 0)))
    if (found < 0).any():
        taken = pc.if_else(pa.array(found >= 0), taken, pa.scalar(None, taken.type))
    return pd.array(taken, dtype="str")


def ranks(labels, found):
    """For codes `found`, their labels' positions in sorted order, missing (-1) after every label: sorting rows
    by these sorts them by label, as pandas would with missing values last."""
    order = np.empty(len(labels) + 1, dtype=np.int64)
    if len(labels):
        order[pc.array_sort_indices(pa.array(labels)).to_numpy()] = np.arange(len(labels))
    order[-1] = len(labels)
    return order[np.asarray(found)]
