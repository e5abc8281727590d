"""Frames written as files a spreadsheet or another tool reads: CSV, XLSX (XlsxWriter) and Parquet, money exact.

Each writer takes, per table, an iterable of frames with the same columns (a table may come in batches: the
events), and reports rows written through `progress(rows)`.

- CSV: a header line, `\\n` line ends, UTF-8. Money columns (`*_cents`, integer cents) lose the suffix and hold
  the exact decimal (`total_cents` 1215 is `total` `12.15`; `-0.05`; never a float); times are ISO-8601 UTC with a
  `Z`, to the second, millisecond or microsecond, whichever holds every time of the column exactly; missing values
  are empty cells; text is written as it is (a cell that starts with `=` is a formula to a spreadsheet: give a
  spreadsheet the XLSX).
- XLSX: one sheet a table, a bold frozen header row with filters; money cells numeric (the decimal of the cents,
  e.g. 12.15, at most 15 significant digits as in any spreadsheet) with the number format `#,##0.00`; times
  typed date-time cells in UTC (`yyyy-mm-dd hh:mm:ss`, kept to the millisecond; a time before 1900-03-01, which
  Excel cannot hold, is its ISO text); text always a text cell (never a formula or a link); integers and
  booleans typed. A sheet holds at most 1,048,575 rows: more is an `InputError`. A text longer than a cell holds
  (32,767 characters) is cut, and said in `Written.notes`.
- Parquet: the frame as it is: integer cents (`*_cents`), `datetime64[us, UTC]` times, categories, nullable
  integers; `pandas.read_parquet` gives the same frame back.
"""

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import numpy as np
import pandas as pd

from ..errors import InputError

FORMATS = ("csv", "xlsx", "parquet")
SHEET_ROWS = 1_048_575  # data rows an XLSX sheet holds under its header
CELL_TEXT = 32_767  # characters an XLSX cell holds
MONEY_FORMAT = "#,##0.00"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_EXCEL_FIRST = datetime(1900, 3, 1)  # (Excel's calendar is wrong before this day)
CHUNK = 50_000

Progress = Callable[[int], None] | None


@dataclass
class Written:
    """What an export wrote: rows per table, and notes worth telling (cells cut, bodies unreadable)."""

    rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def chunks_of(frame: pd.DataFrame, size: int = CHUNK) -> Iterator[pd.DataFrame]:
    """`frame` in slices of at most `size` rows (one empty frame for an empty one, so the header is written)."""
    if not len(frame):
        yield frame
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def is_money(name: str, series: pd.Series) -> bool:
    """Money columns are integer cents named `*_cents`."""
    return name.endswith("_cents") and pd.api.types.is_integer_dtype(series.dtype)


def shown_name(name: str, series: pd.Series) -> str:
    """A column's name in CSV and XLSX: money without its `_cents`."""
    return name.removesuffix("_cents") if is_money(name, series) else name


def _is_time(series: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(series.dtype)


def _utc_micros(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 microseconds since the epoch in UTC, mask of missing) of a datetime column (naive: taken as UTC)."""
    values = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
    micros = values.to_numpy("datetime64[us]").view("int64")
    return micros, series.isna().to_numpy()


def money_texts(cents: pd.Series) -> list[str | None]:
    """The exact decimal text of integer cents: 1215 -> `12.15`, 500 -> `5.00`, -5 -> `-0.05`; None for missing."""
    values = cents.to_numpy("int64", na_value=0)
    missing = cents.isna().to_numpy()
    return [None if gone else f"{'-' if value < 0 else ''}{abs(value) // 100}.{abs(value) % 100:02d}"
            for value, gone in zip(values.tolist(), missing.tolist())]


def time_texts(series: pd.Series) -> list[str | None]:
    """ISO-8601 UTC text with `Z`, to the coarsest unit that keeps every time of the column exact."""
    micros, missing = _utc_micros(series)
    present = micros[~missing]
    unit: Any = "s" if not (present % 1_000_000).any() else "ms" if not (present % 1000).any() else "us"
    texts = np.datetime_as_string(micros.view("datetime64[us]"), unit=unit)
    return [None if gone else f"{text}Z" for text, gone in zip(texts.tolist(), missing.tolist())]


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as the text CSV holds: money as exact decimals (renamed), times as ISO-8601 UTC."""
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if is_money(name, series):
            columns[shown_name(name, series)] = money_texts(series)
        elif _is_time(series):
            columns[name] = time_texts(series)
        else:
            columns[name] = series.reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


@contextmanager
def opened(out: Any, binary: bool) -> Iterator[IO]:
    """A file to write into: `-` is standard output (text only); a path is written whole or not at all (into
    `PATH.part`, renamed when complete)."""
    if out == "-":
        if binary:
            raise InputError("a binary format cannot go to standard output: give a file with --out")
        yield sys.stdout
        sys.stdout.flush()
        return
    path = os.fspath(out)
    part = f"{path}.part"
    try:
        file: IO = open(part, "wb") if binary else open(part, "w", encoding="utf-8", newline="")
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None
    try:
        with file:
            yield file
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.remove(part)


def write_csv(chunks: Iterable[pd.DataFrame], out: Any, progress: Progress = None) -> int:
    """One table as CSV into `out` (a path, or `-`); the rows written."""
    rows = 0
    with opened(out, binary=False) as file:
        for n, chunk in enumerate(chunks):
            csv_frame(chunk).to_csv(file, index=False, header=n == 0, lineterminator="\n")
            rows += len(chunk)
            if progress and len(chunk):
                progress(len(chunk))
    return rows


def write_parquet(chunks: Iterable[pd.DataFrame], out: Any, progress: Progress = None) -> int:
    """One table as Parquet into the path `out`; the rows written. Batches after the first take its schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = 0
    with opened(out, binary=True) as file:
        writer = None
        schema = None
        for chunk in chunks:
            table = pa.Table.from_pandas(_typed_categories(chunk), preserve_index=False, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(file, schema)
            writer.write_table(table)
            rows += len(chunk)
            if progress and len(chunk):
                progress(len(chunk))
        if writer is not None:
            writer.close()
    return rows


def _typed_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each categorical column that has no categories at all (every value missing) given text
    categories, so that it reads back as a categorical, not as objects."""
    empty = [name for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)
             and not len(frame[name].cat.categories) and frame[name].cat.categories.dtype == object]
    if not empty:
        return frame
    frame = frame.copy()
    for name in empty:
        frame[name] = frame[name].cat.set_categories(pd.Index([], dtype="str"))
    return frame


class _Sheet:
    """One table being written into a worksheet, row after row (the workbook keeps one row in memory)."""

    def __init__(self, workbook: Any, name: str, formats: dict) -> None:
        self.sheet = workbook.add_worksheet(name[:31])
        self.formats = formats
        self.rows = 0
        self.cut = 0
        self.columns: list[str] | None = None

    def header(self, frame: pd.DataFrame) -> None:
        self.columns = list(frame.columns)
        for col, name in enumerate(frame.columns):
            series = frame[name]
            shown = shown_name(name, series)
            width = 20 if _is_time(series) else 14 if is_money(name, series) else min(max(len(shown) + 2, 10), 40)
            self.sheet.set_column(col, col, width)
            self.sheet.write_string(0, col, shown, self.formats["header"])
        self.sheet.freeze_panes(1, 0)

    def write(self, frame: pd.DataFrame, progress: Progress = None) -> None:
        if self.columns is None:
            self.header(frame)
        if self.rows + len(frame) > SHEET_ROWS:
            raise InputError(f"an XLSX sheet holds at most {SHEET_ROWS:,} rows: export this table as csv or "
                             "parquet, or fewer rows (--since, --shop)")
        cells = [self._cells(name, frame[name]) for name in frame.columns]
        for offset in range(len(frame)):
            row = self.rows + offset + 1
            for col, (values, put) in enumerate(cells):
                value = values[offset]
                if value is not None:
                    put(row, col, value)
            if progress and offset % 1000 == 999:
                progress(1000)
        if progress and len(frame) % 1000:
            progress(len(frame) % 1000)
        self.rows += len(frame)

    def finish(self) -> None:
        if self.columns:
            self.sheet.autofilter(0, 0, self.rows, len(self.columns) - 1)

    def _text(self, row: int, col: int, value: str) -> None:
        if len(value) > CELL_TEXT:
            value = value[:CELL_TEXT]
            self.cut += 1
        self.sheet.write_string(row, col, value)

    def _time(self, row: int, col: int, value: datetime) -> None:
        if value < _EXCEL_FIRST:
            self.sheet.write_string(row, col, value.isoformat() + "Z")
        else:
            self.sheet.write_datetime(row, col, value, self.formats["time"])

    def _cells(self, name: str, series: pd.Series) -> tuple[list, Callable]:
        """(the column's values as Python objects, None for missing; the function writing one of them)."""
        missing = series.isna().to_numpy()
        sheet, formats = self.sheet, self.formats
        if is_money(name, series):
            values = series.to_numpy("int64", na_value=0).tolist()
            return ([None if gone else value / 100 for value, gone in zip(values, missing.tolist())],
                    lambda r, c, v: sheet.write_number(r, c, v, formats["money"]))
        if _is_time(series):
            micros, gone = _utc_micros(series)
            times = micros.view("datetime64[us]").astype(object)
            return ([None if g else t for t, g in zip(times.tolist(), gone.tolist())], self._time)
        if pd.api.types.is_bool_dtype(series.dtype):
            return ([None if gone else bool(v) for v, gone in zip(series.tolist(), missing.tolist())],
                    sheet.write_boolean)
        if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_float_dtype(series.dtype):
            numbers = series.to_numpy("float64", na_value=np.nan) if pd.api.types.is_float_dtype(series.dtype) \
                else series.to_numpy("int64", na_value=0)
            return ([None if gone else v for v, gone in zip(numbers.tolist(), missing.tolist())],
                    sheet.write_number)
        return ([None if gone else str(v) for v, gone in zip(series.tolist(), missing.tolist())], self._text)


def write_xlsx(tables: dict[str, Iterable[pd.DataFrame]], out: Any, progress: Progress = None) -> Written:
    """Tables as the sheets of one XLSX workbook (a sheet a table, named after it) into the path `out`."""
    import xlsxwriter
    written = Written()
    with opened(out, binary=True) as file:
        workbook = xlsxwriter.Workbook(file, {"constant_memory": True, "strings_to_formulas": False,
                                              "strings_to_urls": False, "strings_to_numbers": False})
        formats = {"header": workbook.add_format({"bold": True}),
                   "money": workbook.add_format({"num_format": MONEY_FORMAT}),
                   "time": workbook.add_format({"num_format": TIME_FORMAT})}
        for name, chunks in tables.items():
            sheet = _Sheet(workbook, name, formats)
            for chunk in chunks:
                sheet.write(chunk, progress)
            sheet.finish()
            written.rows[name] = sheet.rows
            if sheet.cut:
                written.notes.append(f"{name}: {sheet.cut} cell(s) cut to the {CELL_TEXT:,} characters an XLSX "
                                     "cell holds (the csv and parquet exports keep them whole)")
        workbook.close()
    return written
