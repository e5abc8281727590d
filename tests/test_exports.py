"""Exports: files read back (pandas, openpyxl, the csv module) equal the frames, money to the cent; Big Cartel's
order CSV column for column; `bchooks export` as a real process (its errors one line, no store created)."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest

from bchooks import EventStore, analysis, exports, parse_envelope
from bchooks.exports import bigcartel_csv
from bchooks.exports.tables import money_texts, time_texts

#: the admin export's header as the shared API notes (bigcartel.md) document it, character for character
DOCUMENTED_HEADER = (
    "Number,Buyer first name,Buyer last name,Buyer email,Buyer phone number,Date,Time,Status,Payment status,"
    "Transaction ID,Shipping status,Shipping methods,Shipping address 1,Shipping address 2,Shipping city,"
    "Shipping state,Shipping zip,Shipping country,Currency,Items,Item count,Item total,Total price,"
    "Total shipping,Total tax,Tax remitted by Big Cartel,Total discount,Discount code,Source,Note,Private notes")

TEE = {"id": "11", "product_id": "p1", "product_name": "Tee", "product_option_name": "M", "quantity": 2,
       "price": "12.15", "total": "24.30"}
PIN = {"id": "12", "product_id": "p2", "product_name": "Pin", "product_option_name": "", "quantity": 1,
       "price": "0.07", "total": "0.07"}


def order_body(oid="NGRP-1", account="111", created="2026-03-01T14:05:09.120Z", updated=None, shape="flat",
               items=(TEE, PIN), payment="completed", shipping="unshipped", email="Ada@Example.com", extra=None):
    """An order event's body: item total 24.37, shipping 5.00, tax 1.10, discount 2.44 (code SPRING10), total
    28.03; buyer, phone, address, note, a payment transaction and a shipping rate."""
    items = list(items)
    attributes = {"created_at": created, "updated_at": updated or created, "completed_at": created,
                  "item_count": sum(i["quantity"] for i in items), "item_total": "24.37", "discount_total": "2.44",
                  "shipping_total": "5.0", "tax_total": "1.1", "total": "28.03", "tax_remitted_by_big_cartel": False,
                  "customer_first_name": "Ada", "customer_last_name": "Lovelace", "customer_email": email,
                  "customer_phone_number": "+44 20 7946 0000", "customer_note": "Gift, please; no receipt",
                  "shipping_address_1": "1 Analytical Row", "shipping_address_2": "Flat 2", "shipping_city": "London",
                  "shipping_state": "", "shipping_zip": "N1 9GU", "shipping_country_id": "GB",
                  "shipping_country_name": "United Kingdom", "shipping_status": shipping, "payment_status": payment,
                  **(extra or {})}
    adjustments = [{"id": "a1", "type": "discount", "amount": "-2.44", "label": "[SPRING10] 10% off"},
                   {"id": "a2", "type": "shipping", "amount": "5.0", "label": "Royal Mail - [2-3 days]"}]
    transactions = [{"id": "t1", "amount": "28.03", "label": "Payment", "processor": "stripe",
                     "processor_id": "pi_123"}]
    if shape == "flat":
        payload = {"id": oid, **attributes, "currency": {"id": "GBP"}, "items": items, "adjustments": adjustments,
                   "transactions": transactions}
    else:
        included = [{"id": i["id"], "type": "order_line_items",
                     "attributes": {k: v for k, v in i.items() if k not in ("id", "product_id")},
                     "relationships": {"product": {"data": {"id": i["product_id"], "type": "products"}}}}
                    for i in items]
        included += [{"id": a["id"], "type": f"order_adjustments/{a['type']}",
                      "attributes": {"amount": a["amount"], "label": a["label"]}} for a in adjustments]
        included += [{"id": t["id"], "type": "order_transactions/payments",
                      "attributes": {k: v for k, v in t.items() if k != "id"}} for t in transactions]
        payload = {"data": {"id": oid, "type": "orders", "attributes": attributes, "relationships": {
            "currency": {"data": {"id": "GBP", "type": "currencies"}},
            "items": {"data": [{"id": i["id"], "type": "order_line_items"} for i in items]}}}, "included": included}
    return json.dumps({"account_id": account, "type": "order.updated", "payload": payload}).encode()


def put(store, *bodies):
    for body in bodies:
        store.append(body, parse_envelope(body))


@pytest.fixture
def shop_store(tmp_path):
    """Two shops using the same order numbers (shop 222's order without an e-mail); one order refunded; one
    updated out of order (the older state arrives last)."""
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        put(store,
            order_body("NGRP-1", "111", updated="2026-03-02T10:00:00.000Z", shipping="shipped"),
            order_body("NGRP-2", "111", created="2026-03-05T08:00:00Z", shape="jsonapi", items=[PIN],
                       payment="refunded"),
            order_body("NGRP-1", "222", created="2026-02-01T00:00:00Z", email=None),
            order_body("NGRP-1", "111"))  # (older than the shipped state: it does not win)
    return path


def exported(tmp_path, store, table, fmt, **kwargs):
    out = tmp_path / f"{table}.{exports.EXTENSIONS[fmt]}"
    exports.export(store, table, fmt, out, **kwargs)
    return out


def cents_of(text):
    return None if pd.isna(text) else int(Decimal(text) * 100)


def test_money_texts_are_exact_decimals():
    cents = pd.Series([1, 10, 1999, -5, 0, 10 ** 15 + 7, None], dtype="Int64")
    assert money_texts(cents) == ["0.01", "0.10", "19.99", "-0.05", "0.00", "10000000000000.07", None]


def test_time_texts_keep_every_time_exact_to_the_coarsest_unit():
    def times(*texts):
        return pd.Series(pd.to_datetime(list(texts), utc=True, format="ISO8601")).astype("datetime64[us, UTC]")
    assert time_texts(times("2026-03-01T14:05:09Z", None)) == ["2026-03-01T14:05:09Z", None]
    assert time_texts(times("2026-03-01T14:05:09Z", "2026-03-01T14:05:09.120Z")) == \
        ["2026-03-01T14:05:09.000Z", "2026-03-01T14:05:09.120Z"]
    assert time_texts(times("2026-03-01T14:05:09.000001Z")) == ["2026-03-01T14:05:09.000001Z"]


@pytest.mark.parametrize("table", ["orders", "items", "customers"])
def test_csv_reads_back_equal_to_the_frames(tmp_path, shop_store, table):
    with EventStore(shop_store) as store:
        orders, items = analysis.frames(store)
        frame = {"orders": orders, "items": items, "customers": analysis.customers(orders)}[table]
        out = exported(tmp_path, store, table, "csv")
    back = pd.read_csv(out, dtype=str, keep_default_na=False, na_values=[""])
    assert len(back) == len(frame) and len(frame) >= 2
    for name in frame.columns:
        series = frame[name]
        if name.endswith("_cents"):
            assert name not in back
            assert [cents_of(v) for v in back[name.removesuffix("_cents")]] == \
                [None if pd.isna(v) else int(v) for v in series], name
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            pd.testing.assert_series_equal(pd.to_datetime(back[name], utc=True, format="ISO8601")
                                           .astype(series.dtype), series.reset_index(drop=True), check_names=False)
        else:
            # (CSV has one empty cell for an empty text and a missing one: the default option's name is "")
            assert [None if pd.isna(v) else str(v) for v in back[name]] == \
                [None if pd.isna(v) or v == "" else str(v) for v in series], name


def test_csv_money_of_the_hand_computed_order(tmp_path, shop_store):
    with EventStore(shop_store) as store:
        out = exported(tmp_path, store, "orders", "csv")
    rows = list(csv.DictReader(out.open(newline="")))
    first = next(r for r in rows if r["order_id"] == "NGRP-1" and r["account_id"] == "111")
    assert (first["item_total"], first["discount_total"], first["shipping_total"], first["tax_total"],
            first["total"]) == ("24.37", "2.44", "5.00", "1.10", "28.03")
    assert first["shipping_status"] == "shipped" and first["created_at"] == "2026-03-01T14:05:09.120Z"


def test_xlsx_cells_are_typed_and_exact(tmp_path, shop_store):
    with EventStore(shop_store) as store:
        put(store, order_body("NGRP-3", "111", created="2026-03-06T00:00:00Z",
                              extra={"customer_first_name": "=HYPERLINK(\"http://x\")"}))
        orders = analysis.frames(store).orders
        out = exported(tmp_path, store, "orders", "xlsx")
    sheet = openpyxl.load_workbook(out)["orders"]
    header = [cell.value for cell in sheet[1]]
    assert header == [name.removesuffix("_cents") if name.endswith("_cents") and name != "item_count" else name
                      for name in orders.columns]
    for n, row in enumerate(sheet.iter_rows(min_row=2)):
        cells = dict(zip(header, row))
        for name in ("item_total", "discount_total", "shipping_total", "tax_total", "total"):
            cell = cells[name]
            assert cell.data_type == "n" and cell.number_format == "#,##0.00"
            assert int(Decimal(str(cell.value)) * 100) == orders.loc[n, f"{name}_cents"]
        assert cells["created_at"].is_date and cells["created_at"].value == \
            orders.loc[n, "created_at"].tz_convert(None).to_pydatetime()
        assert cells["shipped_at"].value is None or cells["shipped_at"].is_date
        assert cells["order_id"].data_type == "s" and cells["item_count"].value == orders.loc[n, "item_count"]
        assert cells["customer_name"].data_type == "s"  # (a buyer's "=..." stays text, never a formula)
    assert sheet.max_row == len(orders) + 1 == 5


def test_xlsx_all_tables_one_sheet_each(tmp_path, shop_store):
    with EventStore(shop_store) as store:
        frames = analysis.frames(store)
        out = exported(tmp_path, store, "all", "xlsx")
    book = openpyxl.load_workbook(out)
    expected = ["orders", "items", "customers"] + (["products"] if hasattr(analysis, "products") else [])
    assert book.sheetnames == expected
    assert book["items"].max_row == len(frames.items) + 1
    lines = [(r[0].value, r[6].value, r[10].value) for r in book["items"].iter_rows(min_row=2)]
    assert ("NGRP-2", "Pin", 0.07) in lines  # (price: cents 7 as the number 0.07)


def test_parquet_gives_the_frames_back_exactly(tmp_path, shop_store):
    with EventStore(shop_store) as store:
        orders, items = analysis.frames(store)
        for table, frame in (("orders", orders), ("items", items)):
            back = pd.read_parquet(exported(tmp_path, store, table, "parquet"))
            pd.testing.assert_frame_equal(back, frame)
            assert str(back["total_cents"].dtype) == "Int64"


def test_events_export_holds_the_bodies_and_selects_by_time_and_shop(tmp_path, shop_store):
    with EventStore(shop_store) as store:
        stored = list(store.iter_events())
        out = exported(tmp_path, store, "events", "csv")
        back = pd.read_csv(out, dtype=str, keep_default_na=False)
        assert back["body"].tolist() == [e.body.decode() for e in stored]
        assert back["id"].tolist() == [str(e.id) for e in stored]
        shop = exports.Selection(shop="222")
        one = pd.read_parquet(exported(tmp_path, store, "events", "parquet", selection=shop))
        assert one["account_id"].tolist() == ["222"] and str(one["received_at"].dtype) == "datetime64[us, UTC]"
        later = exports.Selection(since=datetime(2999, 1, 1, tzinfo=timezone.utc))
        none = pd.read_parquet(exported(tmp_path, store, "events", "parquet", selection=later))
        assert len(none) == 0 and list(none.columns) == list(one.columns)


def test_since_selects_orders_by_creation_and_their_items(tmp_path, shop_store):
    since = exports.Selection(since=datetime(2026, 3, 2, tzinfo=timezone.utc))
    with EventStore(shop_store) as store:
        orders = pd.read_parquet(exported(tmp_path, store, "orders", "parquet", selection=since))
        items = pd.read_parquet(exported(tmp_path, store, "items", "parquet", selection=since))
    assert orders["order_id"].tolist() == ["NGRP-2"]
    assert items["order_id"].tolist() == ["NGRP-2"] and items["product_name"].tolist() == ["Pin"]


def read_bigcartel(path):
    text = path.read_text(encoding="utf-8")
    return text.splitlines()[0], list(csv.DictReader(io.StringIO(text)))


def test_bigcartel_csv_header_is_the_documented_one(tmp_path, shop_store):
    assert ",".join(bigcartel_csv.HEADER) == DOCUMENTED_HEADER
    with EventStore(shop_store) as store:
        header, _ = read_bigcartel(exported(tmp_path, store, "orders", "bigcartel-csv"))
    assert header == DOCUMENTED_HEADER


def test_bigcartel_csv_row_of_each_payload_shape(tmp_path):
    rows = {}
    for shape in ("flat", "jsonapi"):
        with EventStore(tmp_path / f"{shape}.db") as store:
            put(store, order_body(shape=shape))
            _, rows[shape] = read_bigcartel(exported(tmp_path, store, "orders", "bigcartel-csv"))
    assert rows["flat"] == rows["jsonapi"]
    row = rows["flat"][0]
    assert row == {
        "Number": "NGRP-1", "Buyer first name": "Ada", "Buyer last name": "Lovelace",
        "Buyer email": "Ada@Example.com", "Buyer phone number": "+44 20 7946 0000", "Date": "2026-03-01",
        "Time": "2:05 PM UTC", "Status": "completed", "Payment status": "completed", "Transaction ID": "pi_123",
        "Shipping status": "unshipped", "Shipping methods": "Shipment 1 Royal Mail - [2-3 days]:5.0",
        "Shipping address 1": "1 Analytical Row", "Shipping address 2": "Flat 2", "Shipping city": "London",
        "Shipping state": "", "Shipping zip": "N1 9GU", "Shipping country": "GB", "Currency": "GBP",
        "Items": "product_name:Tee|product_option_name:M|quantity:2|price:12.15|total:24.3;"
                 "product_name:Pin|product_option_name:|quantity:1|price:0.07|total:0.07",
        "Item count": "3", "Item total": "24.37", "Total price": "28.03", "Total shipping": "5.0",
        "Total tax": "1.1", "Tax remitted by Big Cartel": "0.0", "Total discount": "2.44",
        "Discount code": "SPRING10", "Source": "Online", "Note": "Gift, please; no receipt", "Private notes": ""}


def test_bigcartel_csv_items_cell_of_a_default_option_alone():
    assert bigcartel_csv.items_cell([("Pin", "", 1, 700, 700)]) == \
        "product_name:Pin|product_option_name:|quantity:1|price:7.0|total:7.0"
    assert bigcartel_csv.items_cell([]) == ""


def test_bigcartel_csv_date_and_time_in_a_zone():
    moment = pd.Timestamp("2022-07-09T06:33:00Z")
    assert bigcartel_csv.date_time(moment, ZoneInfo("America/New_York")) == ("2022-07-09", "2:33 AM EDT")
    assert bigcartel_csv.date_time(pd.Timestamp("2022-07-09T00:05:00Z")) == ("2022-07-09", "12:05 AM UTC")
    assert bigcartel_csv.date_time(pd.NaT) == ("", "")


def test_bigcartel_csv_missing_fields_are_empty_cells(tmp_path):
    bare = {"id": "B-1", "updated_at": "2026-01-01T00:00:00Z"}  # no money, times, buyer, items
    with EventStore(tmp_path / "bare.db") as store:
        put(store, json.dumps({"type": "order.created", "data": bare}).encode())
        _, rows = read_bigcartel(exported(tmp_path, store, "orders", "bigcartel-csv"))
    row = rows[0]
    assert row["Number"] == "B-1" and row["Source"] == "Online"
    assert {name: value for name, value in row.items() if value} == {"Number": "B-1", "Source": "Online"}


def test_bigcartel_csv_a_body_that_cannot_be_read_leaves_its_cells_empty(tmp_path, shop_store):
    """Frames whose order rows point at a stored body that is not an order, and at no stored event: both rows are
    written from the frames, the others whole, and the notes say so."""
    with EventStore(shop_store) as store:
        put(store, json.dumps({"type": "order.updated", "payload": ["not", "an", "order"]}).encode())
        broken = store.last_event()[0]
        orders, items = analysis.frames(store)
        orders = orders.copy()
        orders.loc[0, "event_id"] = broken
        orders.loc[1, "event_id"] = 10_000
        out, notes = tmp_path / "b.csv", []
        assert bigcartel_csv.write_bigcartel_csv(store, orders, items, out, notes=notes) == len(orders)
    _, rows = read_bigcartel(out)
    assert [r["Number"] for r in rows] == orders["order_id"].tolist()
    for row, name in zip(rows[:2], orders["customer_name"]):
        assert row["Buyer first name"] == ("" if pd.isna(name) else name) and row["Shipping address 1"] == ""
        assert row["Items"] == "" and row["Total price"] != ""
    assert rows[2]["Shipping address 1"] == "1 Analytical Row"
    assert notes and notes[0].startswith("2 order(s)")


def run(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_cli_two_shops_with_the_same_order_numbers(tmp_path, shop_store):
    done = run(["export", "orders", "--format", "bigcartel-csv", "--shop", "222", "--db", str(shop_store),
                "--out", "-"], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["Number"], r["Payment status"], r["Date"]) for r in rows] == [("NGRP-1", "completed", "2026-02-01")]
    assert done.stderr == "bchooks: wrote 1 orders\n"
    done = run(["export", "items", "--format", "xlsx", "--shop", "111", "--db", str(shop_store)], tmp_path)
    assert done.returncode == 0, done.stderr
    written = done.stdout.split(" to ")[-1].strip()
    assert written.startswith("items-") and written.endswith(".xlsx") and (tmp_path / written).is_file()
    sheet = openpyxl.load_workbook(tmp_path / written)["items"]
    assert sheet.max_row == 1 + 3  # NGRP-1 (Tee, Pin) and NGRP-2 (Pin) of shop 111 only


@pytest.mark.parametrize("args,needle", [
    (["export", "nonsense"], "invalid choice"),
    (["export", "orders", "--format", "pdf"], "invalid choice"),
    (["export", "orders", "--since", "yesterday"], "--since must be an ISO-8601 time"),
    (["export", "items", "--format", "bigcartel-csv"], "orders only"),
    (["export", "all", "--format", "csv"], "--format xlsx"),
    (["export", "orders", "--zone", "Mars/Base"], "--zone must be a time zone"),
])
def test_cli_usage_errors_are_one_line_exit_2(tmp_path, args, needle):
    done = run([*args, "--db", "never.db"], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == "" and not (tmp_path / "never.db").exists()
    assert "yesterday" not in done.stderr or "--since" in done.stderr


def test_cli_missing_store_unknown_shop_and_binary_to_stdout(tmp_path, shop_store):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    done = run(["export", "orders", "--db", "missing.db"], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "missing.db").exists() and list(tmp_path.iterdir()) == []
    done = run(["export", "orders", "--shop", "999", "--db", str(shop_store)], tmp_path)
    assert done.returncode == 2 and "no shop 999" in done.stderr and "111, 222" in done.stderr
    done = run(["export", "orders", "--format", "parquet", "--out", "-", "--db", str(shop_store)], tmp_path)
    assert done.returncode == 2 and "--out" in done.stderr and done.stdout == ""
    done = run(["export", "orders", "--out", "no/such/folder/x.csv", "--db", str(shop_store)], tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("bchooks: cannot write no/such/folder/x.csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cents", [0, 1, 5, 10, 50, 99, 100, 500, 1210, 1215, -5, -1210, 123456789, 10 ** 17 + 3])
def test_bigcartel_money_is_the_wire_style(cents):
    from bchooks.wire import money_of_cents, money_text
    assert bigcartel_csv.plain_money(cents) == money_text(money_of_cents(cents))


def test_xlsx_cuts_a_text_longer_than_a_cell_holds_and_says_so(tmp_path):
    with EventStore(tmp_path / "long.db") as store:
        put(store, json.dumps({"type": "order.created", "data": {"id": "L-1", "note": "x" * 40_000}}).encode())
        out = tmp_path / "events.xlsx"
        written = exports.export(store, "events", "xlsx", out)
    assert written.rows == {"events": 1} and "1 cell(s) cut to the 32,767 characters" in written.notes[0]
    sheet = openpyxl.load_workbook(out)["events"]
    assert [c.value for c in sheet[1]] == ["id", "received_at", "type", "account_id", "resource_id", "body"]
    assert len(sheet["F2"].value) == 32_767 and sheet["B2"].is_date and sheet["D2"].value is None


def test_products_export_the_catalogue_latest_state_exactly(tmp_path):
    from bchooks.simulator.shop import Shop
    shop = Shop(3, account_id="111")
    path = tmp_path / "events.db"
    with EventStore(path) as store:
        put(store, *shop.events("product.created", 3))
        frame = analysis.products(store)
        out = exported(tmp_path, store, "products", "parquet")
    assert len(frame) >= 3
    pd.testing.assert_frame_equal(pd.read_parquet(out), frame.reset_index(drop=True), check_categorical=False,
                                  check_dtype=False)
    done = run(["export", "products", "--db", str(path), "--out", "-"], tmp_path)
    assert done.returncode == 0, done.stderr
    back = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [(r["product_id"], r["option_id"], r["price"]) for r in back] == [
        (p, o, str(analysis.money(c))) for p, o, c in zip(frame["product_id"], frame["option_id"], frame["price_cents"])]
