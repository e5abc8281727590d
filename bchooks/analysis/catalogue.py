"""The catalogue: the latest state of every product option, from the stored product events, and its health.

`products(store)` reads `product.created`, `product.updated` and `product.deleted` events (either envelope format,
either payload shape: a flat product with its `options`, or a JSON:API document whose `options` relationship points
at `product_options` in `included`). A product is (account_id, product_id): two shops may use the same ids.

Which state is the latest (the rule, also in docs/catalogue.md):

- **State**: among a product's `created`/`updated` events, the newest `updated_at` wins; equal times (or none) are
  decided by the body's SHA-256 (the greater digest wins), as for orders, so the state never depends on arrival
  order. An event whose `updated_at` is missing or not a time loses to every dated one.
- **Deleted**: a `product.deleted` payload carries the id only, no time, so arrival (the store's event id) is the
  only order it has: a product is deleted when its newest event by arrival is `product.deleted`, exactly the rule
  the store and the poller use (`Store.live_resources`); a product stored again after its deletion (the poller's
  "comes back") is live. A deleted product keeps its last known state, with `deleted` True; one known only from
  its deletion has one row with nothing but its ids.
- **Malformed** events are skipped, never raised: a body that is not a JSON object, a payload without a usable id,
  a `created`/`updated` payload that carries nothing beside its id, a JSON:API `data` without `attributes`, options
  that are not a list of objects. Values of the wrong type (a price `"abc"`, a stock `"x"`) are missing, not fatal.

`catalogue(products, items, low_stock, plan_cap)` is the seller's report on it (see its docstring).
"""

import hashlib
import json
from collections import namedtuple
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from ..clock import parse_iso
from ..wire import PRODUCT_TYPES, cents, text_value

#: the columns of `products(store)`, in order
PRODUCT_COLUMNS = ("account_id", "store_name", "product_id", "product_name", "status", "option_id", "option_name",
                   "price_cents", "quantity", "sold", "deleted", "created_at", "updated_at")
#: product statuses that show the product in the shop (Big Cartel's are active, hidden, sold_out, coming_soon)
LISTED = ("active", "sold_out", "coming_soon")
_TEXT = ("account_id", "store_name", "product_id", "product_name", "status", "option_id", "option_name")
_COUNTS = ("price_cents", "quantity", "sold")
_TIMES = ("created_at", "updated_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _payload(body: bytes) -> Any:
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        try:  # (what msgspec refuses and json reads: NaN, lone surrogates)
            document = json.loads(body)
        except (ValueError, RecursionError):
            return None
    return document.get("payload", document.get("data")) if isinstance(document, dict) else None


def _ident(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value) or None


def _whole(value: Any) -> int | None:
    """A whole number (an int, or its text) that fits an int64; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if text.lstrip("-").isdigit() else None
    return value if isinstance(value, int) and -2 ** 63 <= value < 2 ** 63 else None


def _time(value: Any) -> pd.Timestamp:
    if not isinstance(value, str):
        return pd.NaT
    try:
        moment = pd.Timestamp(value)
    except (ValueError, OverflowError):
        return pd.NaT
    if moment is pd.NaT:
        return pd.NaT
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _moment(value: Any) -> int | None:
    """An `updated_at` as microseconds since the epoch, for ranking; None when not a time (the
    same times `_time` reads: ISO-8601, a naive one taken as UTC)."""
    if not isinstance(value, str):
        return None
    try:
        return (parse_iso(value) - _EPOCH) // _MICROSECOND
    except (ValueError, OverflowError):
        moment = _time(value)
        return None if moment is pd.NaT else moment.value // 1000


def _options_of(payload: dict) -> tuple[str | None, dict, list] | None:
    """(product id, attributes, [option dicts]) of a product payload in either shape, or None when malformed."""
    data = payload.get("data")
    if isinstance(data, dict):  # JSON:API
        attributes = data.get("attributes")
        if not isinstance(attributes, dict):
            return None
        included = payload.get("included", [])
        if not isinstance(included, list):
            return None
        found = {str(i.get("id")): i for i in included if isinstance(i, dict) and i.get("type") == "product_options"}
        relationships = data.get("relationships")
        relation = relationships.get("options") if isinstance(relationships, dict) else None
        refs = relation.get("data") if isinstance(relation, dict) else None
        if refs is not None and not isinstance(refs, list):
            return None
        wanted = [str(r.get("id")) for r in refs or () if isinstance(r, dict)]
        chosen = [found[i] for i in wanted if i in found] if wanted else list(found.values())
        options = []
        for option in chosen:
            fields = option.get("attributes")
            if not isinstance(fields, dict):
                return None
            options.append({**fields, "id": option.get("id")})
        return _ident(data.get("id")), attributes, options
    options = payload.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
        return None
    if set(payload) <= {"id"}:  # (a state event carrying nothing but its id)
        return None
    return _ident(payload.get("id")), payload, options


def _deleted_id(payload: Any) -> str | None:
    """The product id a `product.deleted` payload carries: `{"id": ...}`, the id itself, or `{"data": {"id"}}`."""
    if isinstance(payload, dict):
        data = payload.get("data")
        return _ident(data.get("id")) if isinstance(data, dict) else _ident(payload.get("id"))
    return _ident(payload)


def _state_rows(account_id: str | None, product_id: str, attributes: dict, options: list) -> list[dict]:
    product = {"account_id": account_id, "product_id": product_id, "product_name": text_value(attributes.get("name")),
               "status": text_value(attributes.get("status")), "created_at": _time(attributes.get("created_at")),
               "updated_at": _time(attributes.get("updated_at"))}
    if not options:  # (a product without options: one row, so that it is counted)
        return [{**product, "option_id": None, "option_name": None, "price_cents": cents(attributes.get(
            "default_price")), "quantity": None, "sold": None}]
    return [{**product, "option_id": _ident(option.get("id")), "option_name": text_value(option.get("name")),
             "price_cents": cents(option.get("price")), "quantity": _whole(option.get("quantity")),
             "sold": _whole(option.get("sold"))} for option in options]


def product_rows(events: Iterable[Any]) -> list[dict]:
    """The rows of `products` (without `store_name`) from stored product events (`StoredEvent`s, any order)."""
    states: dict[tuple, tuple] = {}  # (account, product) -> (rank, rows)
    last: dict[tuple, tuple[int, bool]] = {}  # (account, product) -> (event id, deleted) of its newest arrival
    for event in events:
        payload = _payload(event.body)
        if event.type == "product.deleted":
            product_id = _deleted_id(payload)
            if product_id is None:
                continue
            key = (event.account_id, product_id)
            if key not in last or event.id > last[key][0]:
                last[key] = (event.id, True)
            continue
        parsed = _options_of(payload) if isinstance(payload, dict) else None
        if parsed is None:
            continue
        state_id, attributes, options = parsed
        if state_id is None:
            continue
        key = (event.account_id, state_id)
        if key not in last or event.id > last[key][0]:
            last[key] = (event.id, False)
        updated = _moment(attributes.get("updated_at"))
        rank = (updated is not None, updated or 0, hashlib.sha256(event.body).hexdigest())
        if key not in states or rank > states[key][0]:
            states[key] = (rank, (event.account_id, state_id, attributes, options))
    rows: list[dict] = []
    for key in sorted(last, key=lambda k: (k[0] is None, k[0] or "", k[1])):
        deleted = last[key][1]
        found = _state_rows(*states[key][1]) if key in states else [{"account_id": key[0], "product_id": key[1]}]
        rows.extend({**row, "deleted": deleted} for row in found)
    return rows


def products_frame(rows: list[dict], names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The documented frame of `product_rows` (`names`: {account_id: store name})."""
    names = names or {}
    columns: dict[str, Any] = {}
    for name in PRODUCT_COLUMNS:
        if name == "store_name":
            values: list = [names.get(row["account_id"]) if row.get("account_id") is not None else None
                            for row in rows]
        else:
            values = [row.get(name) for row in rows]
        if name in _TEXT:
            columns[name] = pd.Series(values, dtype="str")
        elif name in _COUNTS:
            columns[name] = pd.array(values, dtype="Int64")
        elif name in _TIMES:
            columns[name] = pd.Series(values, dtype="datetime64[us, UTC]")
        else:
            columns[name] = np.array(values, dtype=bool)
    return pd.DataFrame(columns)


def products(store: Any) -> pd.DataFrame:
    """One row per product option in its latest state (module docstring: the rule), for every shop of the store:
    account_id, store_name (where the store knows it), product_id, product_name, status, option_id, option_name,
    price_cents (exact integer cents), quantity (stock) and sold (Int64, missing where not said), deleted (bool),
    created_at, updated_at (UTC). Sorted by account, product id, then the options' order in the product."""
    rows = product_rows(store.iter_events(type=PRODUCT_TYPES))
    return products_frame(rows, store.cursors.shop_names())


# -- the report
#: the problems `catalogue` reports, in the order it lists them
PROBLEMS = ("sold_out_listed", "low_stock", "never_sold")
Catalogue = namedtuple("Catalogue", "shops problems sell_through")
_PROBLEM_COLUMNS = ("problem", "product_id", "product_name", "status", "option_id", "option_name", "quantity", "sold")
_SHOP_COLUMNS = ("products", "listed", "plan_cap", "cap_left", "over_cap", *PROBLEMS, "sell_through")


def _shop_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in ("account_id", "store_name") if name in frame]


def _through(sold: Any, stock: Any) -> Any:
    """sold / (sold + stock), NA when either is unknown or both are 0."""
    if sold is pd.NA or stock is pd.NA or sold + stock <= 0:
        return pd.NA
    return sold / (sold + stock)


def _sold_keys(items: pd.DataFrame | None) -> set | None:
    """{(account_id, product_id)} of the line items (account None: any shop, when `items` has no account)."""
    if items is None:
        return None
    columns = [name for name in ("account_id", "product_id") if name in items]
    pairs = items[columns].drop_duplicates()  # (a million line items: a few hundred products)
    accounts = pairs["account_id"] if "account_id" in pairs else pd.Series([None] * len(pairs), dtype=object)
    return {(None if pd.isna(a) else a, str(p)) for a, p in zip(accounts, pairs["product_id"]) if not pd.isna(p)}


def _cap_of(plan_cap: Any, account: Any) -> Any:
    if isinstance(plan_cap, Mapping):
        plan_cap = plan_cap.get(account)
    return pd.NA if plan_cap is None else int(plan_cap)


def _product_table(options: pd.DataFrame, sold_keys: set | None, account: Any) -> pd.DataFrame:
    """One row per product (not deleted) of one shop's options: its stock, sold, and the problems of its own."""
    quantity = pd.array(options["quantity"], dtype="Int64")
    sold = pd.array(options["sold"], dtype="Int64")
    parts = pd.DataFrame({"product_id": options["product_id"].to_numpy(object),
                          "product_name": options["product_name"].to_numpy(object),
                          "status": options["status"].to_numpy(object), "quantity": quantity, "sold": sold,
                          "stock_unknown": quantity.isna(), "sold_unknown": sold.isna(),
                          "zero": (quantity == 0).fillna(False).to_numpy(bool)})
    table = parts.groupby("product_id", sort=False).agg(
        product_name=("product_name", "first"), status=("status", "first"), quantity=("quantity", "sum"),
        sold=("sold", "sum"), stock_unknown=("stock_unknown", "any"), sold_unknown=("sold_unknown", "any"),
        no_stock=("zero", "all")).reset_index()
    table["quantity"] = table["quantity"].astype("Int64").mask(table["stock_unknown"].to_numpy(bool))
    table["sold"] = table["sold"].astype("Int64").mask(table["sold_unknown"].to_numpy(bool))
    status = table["status"]
    in_items = np.array([sold_keys is not None and ((account, product) in sold_keys or (None, product) in sold_keys)
                         for product in table["product_id"]], dtype=bool)
    table["listed"] = status.isin(LISTED).to_numpy(bool)
    table["sold_out_listed"] = ((status == "sold_out") | ((status == "active") & table["no_stock"])).to_numpy(bool)
    table["never_sold"] = (status.isin(("active", "sold_out")) & (table["sold"] == 0).fillna(False)
                           & ~in_items).to_numpy(bool)
    total = table["sold"] + table["quantity"]
    table["sell_through"] = (table["sold"].astype("Float64") / total.astype("Float64")).mask(
        (total <= 0).fillna(True).to_numpy(bool))
    return table[["product_id", "product_name", "status", "listed", "quantity", "sold", "sold_out_listed",
                  "never_sold", "sell_through"]]


def catalogue(products: pd.DataFrame, items: pd.DataFrame | None = None, low_stock: int = 5,
              plan_cap: int | Mapping | None = None) -> Catalogue:
    """The catalogue's health, shop by shop, from `products(store)` (deleted products left out everywhere).

    A product is **listed** when its status shows it in the shop: `active`, `sold_out` or `coming_soon` (not
    `hidden`, nor a status the product does not say). The problems, one row each in `problems`:

    - `sold_out_listed` (a product): listed as `sold_out`, or `active` with every option's stock known and 0;
      `quantity`/`sold` are the product's totals (missing when an option's is).
    - `low_stock` (an option): an option of an `active` product not reported sold out, whose stock is known and at
      most `low_stock` (0 included: one option sold out while the others sell).
    - `never_sold` (a product): `active` or `sold_out`, every option's `sold` known and 0, and no line item in
      `items` (any order, refunded too) with its (account_id, product_id) (not checked when `items` is None).

    `sell_through` has one row per product: sold / (sold + stock) over its options (`sold`, `quantity`: the
    totals; missing when either is unknown or both are 0), best first. `shops` has one row per shop:
    `products` (not deleted, hidden included), `listed`, `plan_cap` (the plan's `max_products`: `plan_cap` is one
    number for every shop in the frame or {account_id: cap}; missing = unknown, never guessed), `cap_left`
    (plan_cap - listed), `over_cap` (listed > plan_cap; missing when the cap is unknown), the count of each
    problem, and the shop's `sell_through` (over its products whose sold and stock are known).

    Returns `Catalogue(shops, problems, sell_through)`; every frame keeps `account_id` and `store_name` (when
    `products` has them), sorted by shop, then (problems) problem in `PROBLEMS` order, product name, product id,
    option order."""
    shop_columns = _shop_columns(products)
    live = products[~products["deleted"].to_numpy(bool)] if "deleted" in products else products
    sold_keys = _sold_keys(items)
    shops: list[dict] = []
    problems: list[dict] = []
    through: list[dict] = []
    accounts = products["account_id"] if "account_id" in products else pd.Series([None] * len(products))
    for account in sorted({None if pd.isna(a) else a for a in accounts}, key=lambda a: (a is None, a or "")):
        mine = live[(live["account_id"].isna() if account is None else live["account_id"] == account)] \
            if "account_id" in live else live
        shop = {name: products.loc[accounts.isna() if account is None else accounts == account, name].iloc[0]
                for name in shop_columns}
        table = _product_table(mine, sold_keys, account)
        low = mine[mine["status"].eq("active").fillna(False).to_numpy(bool)
                   & ~mine["product_id"].isin(table["product_id"][table["sold_out_listed"]]).to_numpy()
                   & (mine["quantity"] <= low_stock).fillna(False).to_numpy(bool)]
        found = [table[table["sold_out_listed"]].assign(problem="sold_out_listed", option_id=None, option_name=None),
                 low.assign(problem="low_stock"),
                 table[table["never_sold"]].assign(problem="never_sold", option_id=None, option_name=None)]
        for rows in found:
            problems.extend({**shop, **{name: row[name] for name in _PROBLEM_COLUMNS}}
                            for row in rows.to_dict("records"))
        names = table["product_name"].fillna("")
        ranked = table.assign(_name=names, _known=table["sell_through"].notna()).sort_values(
            ["_known", "sell_through", "_name", "product_id"], ascending=[False, False, True, True], kind="stable")
        through.extend({**shop, **{name: row[name] for name in ("product_id", "product_name", "status", "sold",
                                                                 "quantity", "sell_through")}}
                       for row in ranked.to_dict("records"))
        known = table[table["quantity"].notna() & table["sold"].notna()]
        cap = _cap_of(plan_cap, account)
        listed = int(table["listed"].sum())
        shops.append({**shop, "products": len(table), "listed": listed, "plan_cap": cap,
                      "cap_left": pd.NA if cap is pd.NA else cap - listed,
                      "over_cap": pd.NA if cap is pd.NA else listed > cap,
                      "sold_out_listed": int(table["sold_out_listed"].sum()), "low_stock": len(low),
                      "never_sold": int(table["never_sold"].sum()),
                      "sell_through": _through(int(known["sold"].sum()), int(known["quantity"].sum()))})
    return Catalogue(_typed(pd.DataFrame(shops, columns=[*shop_columns, *_SHOP_COLUMNS])),
                     _typed(_problems_sorted(pd.DataFrame(problems, columns=[*shop_columns, *_PROBLEM_COLUMNS]))),
                     _typed(pd.DataFrame(through, columns=[*shop_columns, "product_id", "product_name", "status",
                                                           "sold", "quantity", "sell_through"])))


def _problems_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Within each shop (already in order): by problem, product name, product id; options keep their order."""
    if not len(frame):
        return frame
    shop = frame["account_id"].fillna("\uffff") if "account_id" in frame else pd.Series("", index=frame.index)
    keys = pd.DataFrame({"shop": pd.Categorical(shop, categories=list(dict.fromkeys(shop))).codes,
                         "problem": frame["problem"].map(PROBLEMS.index), "name": frame["product_name"].fillna(""),
                         "product": frame["product_id"], "at": np.arange(len(frame))})
    order = keys.sort_values(["shop", "problem", "name", "product", "at"], kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The report's columns typed: counts Int64, rates Float64, flags boolean, text str."""
    for name in frame.columns:
        if name in ("quantity", "sold", "plan_cap", "cap_left", "products", "listed", *PROBLEMS):
            frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
        elif name == "sell_through":
            frame[name] = pd.array(frame[name].tolist(), dtype="Float64")
        elif name == "over_cap":
            frame[name] = pd.array(frame[name].tolist(), dtype="boolean")
        else:
            frame[name] = pd.Series([None if pd.isna(v) else v for v in frame[name]], dtype="str", index=frame.index)
    return frame


__all__ = ["Catalogue", "LISTED", "PROBLEMS", "PRODUCT_COLUMNS", "catalogue", "product_rows",
           "products", "products_frame"]
