"""The fulfilment panel of notebook 5: the orders waiting to ship, ticked, given tracking numbers, previewed and
shipped, and their packing list. Thin over the library: the queue is `analysis.late_orders`, the preview
`fulfilment.plan`, the shipping `fulfilment.ship` (`who="notebook"`), the packing list `packing_list_html`.

    panel = FulfilmentPanel(config, store)     # built from the store as it is now
    display(panel)                             # nothing is shipped until Ship is clicked

Every error is one sentence in the status line; every text from an order is HTML-escaped.
"""

import csv
import math
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import ipywidgets as w
import pandas as pd

from ..errors import InputError
from ..store import open_store
from ..widgets import Panel, escape, html_table
from .echo import clients_from
from .packing import packing_list_html
from ..store.shipments import SHIPPED

ALL = ""  # the shop dropdown's value for every shop
PASTE_HELP = "one order a line: order number, carrier, tracking number (and a tracking URL if you have one)"


def lateness(row: dict, now: pd.Timestamp) -> str:
    """`3 days late`, `due today`, `due in 2 days` (or `no order date`) of a `late_orders` row."""
    if row.get("created_at") is None or pd.isna(row.get("created_at")):
        return "no order date"
    if row.get("late"):
        days = int(row["days_late"])
        return f"{days} day{'s' if days != 1 else ''} late"
    left = math.floor((pd.Timestamp(row["due_at"]) - now) / pd.Timedelta(days=1))
    return "due today" if left <= 0 else f"due in {left} day{'s' if left != 1 else ''}"


def parse_pasted(text: str) -> list[tuple[int, str, str | None, str | None, str | None]]:
    """(line number, order, carrier, tracking number, tracking URL) of each pasted line `order,carrier,tracking[,url]`
    (commas or tabs; blank lines and a header line naming an order column skipped); `InputError` naming the line."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = next(csv.reader([line], dialect="excel-tab" if "\t" in line else "excel"), [])
        fields = [field.strip() for field in fields]
        if not any(fields):
            continue
        first = fields[0].lstrip("#").strip().lower()
        if number == 1 and first in ("order", "order number", "order id", "number", "order_id"):
            continue
        if not first or len(fields) > 4:
            raise InputError(f"line {number} of the pasted text is not `order,carrier,tracking number`: "
                             f"{','.join(fields)[:80]!r}")
        carrier, tracking, url = (fields[1:] + [None, None, None])[:3]
        found.append((number, fields[0].lstrip("#"), carrier or None, tracking or None, url or None))
    return found


def _without_shipped(store: Any, queue: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The queue without the orders this kit shipped (recorded in the store) whose new state has not been stored
    yet, and how many those are."""
    if not len(queue):
        return queue, 0
    accounts = queue["account_id"].astype(object) if "account_id" in queue else pd.Series([None] * len(queue))
    ids = queue["order_id"].astype(str)
    shipped = set()
    for account in accounts.dropna().unique().tolist():
        mine = ids[(accounts == account).to_numpy(bool)].tolist()
        for order_id, attempts in store.shipments.of_orders(str(account), mine).items():
            if any(attempt["state"] == SHIPPED for attempt in attempts):
                shipped.add((account, order_id))
    keep = [(a, o) not in shipped for a, o in zip(accounts.tolist(), ids.tolist())]
    return queue[keep].reset_index(drop=True), len(queue) - sum(keep)


def _said(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


class QueueRow:
    """One order of the queue: its tick box, its carrier and tracking number inputs."""

    def __init__(self, row: dict, now: pd.Timestamp, shop: str):
        self.account_id = None if pd.isna(row.get("account_id")) else str(row.get("account_id"))
        self.order_id = str(row["order_id"])
        self.tick = w.Checkbox(value=False, indent=False, layout=w.Layout(width="24px"))
        self.carrier = w.Text(placeholder="carrier", layout=w.Layout(width="120px"))
        self.tracking = w.Text(placeholder="tracking number", layout=w.Layout(width="200px"))
        when = pd.Timestamp(row["created_at"]).strftime("%-d %b %Y") if not pd.isna(row.get("created_at")) else ""
        late = lateness(row, now)
        color = "#cf222e" if row.get("late") else "#555"
        customer, items = (_said(row.get(name)) for name in ("customer_name", "items"))
        self.label = w.HTML(f"<span class='bchooks-order'><b>#{escape(self.order_id)}</b>"
                            + (f" <span style='color:#555'>{escape(shop)}</span>" if shop else "")
                            + f" · {escape(when)} · <span style='color:{color}'>{escape(late)}</span> · "
                            f"{escape(customer)}<br><span style='color:#555'>{escape(items)}</span></span>",
                            layout=w.Layout(width="560px"))
        self.widget = w.HBox([self.tick, self.label, self.carrier, self.tracking])

    @property
    def key(self) -> tuple[str | None, str]:
        return self.account_id, self.order_id


class FulfilmentPanel(Panel):
    """The unshipped orders of one shop or all, oldest first against the promised days (`config.promised_days`),
    each with a tick box and carrier / tracking number inputs; a paste box; Preview, Ship, Packing list."""

    def __init__(self, config: Any, store: Any = None, *, limit: int = 50, now: Any = None,
                 exports: str = "exports", clients: Callable[[str], Any] | None = None):
        super().__init__()
        self.config, self._given_store, self.limit, self.exports = config, store, limit, exports
        self._now = now
        self.clients = clients or clients_from(config)
        self.shop = w.Dropdown(options=[("all shops", ALL)], value=ALL, description="Shop")
        self.notify = w.Checkbox(value=False, description="email each customer their tracking", indent=False)
        self.paste = w.Textarea(placeholder=PASTE_HELP, layout=w.Layout(width="900px", height="70px"))
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.preview_button = w.Button(description="Preview", icon="eye")
        self.ship_button = w.Button(description="Ship", button_style="primary", icon="truck")
        self.packing_button = w.Button(description="Packing list", icon="print")
        self.queue = w.VBox()
        self.summary = w.HTML()
        self.result = w.HTML()
        self.link = w.HTML()
        self.refresh_button.on_click(self._action(self.refresh))
        self.preview_button.on_click(self._action(self.preview))
        self.ship_button.on_click(self._action(self.ship))
        self.packing_button.on_click(self._action(self.packing_list))
        self.shop.observe(lambda change: self._action(self.refresh)(), names="value")
        self.widget = w.VBox([
            w.HTML(f"<b>Orders to ship</b> (promised within {escape(config.promised_days)} days; "
                   "late ones first, then oldest first)"),
            w.HBox([self.shop, self.refresh_button]), self.summary, self.queue,
            w.HTML(f"<span class='bchooks-note'>Or paste tracking numbers, {escape(PASTE_HELP)}:</span>"),
            self.paste, self.notify,
            w.HBox([self.preview_button, self.ship_button, self.packing_button]), self.status, self.result,
            self.link])
        self.rows: list[QueueRow] = []
        self.orders = self.items = None
        self.steps: list = []
        self.outcomes: list = []
        self._refreshing = False
        self._action(self.refresh)()

    @contextmanager
    def _store(self):
        if self._given_store is not None:
            yield self._given_store
        else:
            with open_store(self.config) as store:
                yield store

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC") if self._now is None else pd.Timestamp(self._now)

    def _shop_names(self) -> dict:
        names: dict = {}
        if self.orders is not None and "account_id" in self.orders:
            stores = self.orders["store_name"].astype(object) if "store_name" in self.orders else None
            for n, account in enumerate(self.orders["account_id"].astype(object).tolist()):
                if account is None or account != account:
                    continue
                name = None if stores is None else stores.iloc[n]
                if account not in names or (name is not None and name == name):
                    names[str(account)] = f"{name} ({account})" if name is not None and name == name \
                        else f"shop {account}"
        return names

    def refresh(self) -> None:
        """Read the store again: the shops, and the queue of the chosen shop (or all)."""
        if self._refreshing:  # (the shop list changing while it is read)
            return
        self._refreshing = True
        try:
            self._refresh()
        finally:
            self._refreshing = False

    def _refresh(self) -> None:
        from .. import analysis
        with self._store() as store:
            self.orders, self.items = analysis.frames(store)
        names = self._shop_names()
        options = [("all shops", ALL)] + sorted(((name, account) for account, name in names.items()),
                                                 key=lambda option: option[0])
        if list(self.shop.options) != options:
            chosen = self.shop.value if self.shop.value in {value for _, value in options} else ALL
            with self.shop.hold_trait_notifications():
                self.shop.options, self.shop.value = options, chosen
        orders, items = self.orders, self.items
        if self.shop.value != ALL:
            orders, items = analysis.for_shop((orders, items), self.shop.value)
        now = self.now()
        queue = analysis.late_orders(orders, items, self.config.promised_days, now=now)
        with self._store() as store:
            queue, waiting = _without_shipped(store, queue)
        several = len(names) > 1
        self.rows = [QueueRow(row, now, names.get(str(row.get("account_id")), "") if several else "")
                     for row in queue.head(self.limit).to_dict("records")]
        self.queue.children = [row.widget for row in self.rows]
        late = int(queue["late"].sum()) if len(queue) else 0
        shown = f" (the {len(self.rows)} oldest shown)" if len(queue) > len(self.rows) else ""
        echo = f" {waiting} shipped from here wait for the shop's update (the next poll or webhook)." \
            if waiting else ""
        self.summary.value = escape((f"{len(queue)} order(s) to ship, {late} of them late{shown}."
                                     if len(queue) else "No order waits to be shipped.") + echo)
        self.say(f"{len(queue)} order(s) to ship, {late} late.")

    def _account_of(self, order_id: str, number: int) -> str | None:
        """The shop of a pasted order number: the chosen shop, else the one shop that has it."""
        if self.shop.value != ALL:
            return self.shop.value
        if self.orders is None or "account_id" not in self.orders:
            return None
        found = self.orders["account_id"][self.orders["order_id"].astype(object) == order_id].dropna().unique()
        if len(found) == 1:
            return str(found[0])
        if len(found) > 1:
            raise InputError(f"line {number} of the pasted text: order {order_id} is in several shops: choose the "
                             "shop first")
        names = self._shop_names()
        if len(names) == 1:
            return next(iter(names))
        raise InputError(f"line {number} of the pasted text: no order {order_id} in the store: choose its shop first")

    def shipments(self) -> list:
        """The shipments asked for: the ticked orders with their carrier and tracking number, and each pasted line
        (which also ticks and fills its order when the queue shows it)."""
        from . import Shipment
        pasted = []
        by_key = {row.key: row for row in self.rows}
        for number, order, carrier, tracking, url in parse_pasted(self.paste.value):
            key = (self._account_of(order, number), order)
            row = by_key.get(key)
            if row is not None:
                row.tick.value, row.carrier.value, row.tracking.value = True, carrier or "", tracking or ""
            pasted.append((key, carrier, tracking, url))
        chosen: dict = {}
        for row in self.rows:
            if row.tick.value:
                chosen[row.key] = (row.carrier.value.strip() or None, row.tracking.value.strip() or None, None)
        for key, carrier, tracking, url in pasted:
            chosen[key] = (carrier, tracking, url)
        return [Shipment(account, order, carrier, tracking, url, notify=self.notify.value)
                for (account, order), (carrier, tracking, url) in chosen.items()]

    def _chosen(self) -> list | None:
        shipments = self.shipments()
        if not shipments:
            self.result.value = ""
            self.say("Tick an order (or paste order, carrier, tracking lines) first.", ok=False)
            return None
        return shipments

    def preview(self) -> None:
        """What Ship would do (`fulfilment.plan`), changing nothing."""
        from . import plan
        shipments = self._chosen()
        if shipments is None:
            return
        with self._store() as store:
            self.steps = plan(store, shipments)
        rows = [{"order": s.shipment.order_id, "shop": s.shipment.account_id or "", "what would happen": s.action,
                 "why": s.reason or "", "carrier": s.shipment.carrier or "",
                 "tracking number": s.shipment.tracking_number or "(none)"} for s in self.steps]
        self.result.value = html_table(rows, ["order", "shop", "what would happen", "why", "carrier",
                                              "tracking number"])
        counts = pd.Series([s.action for s in self.steps]).value_counts()
        self.say("Preview: " + ", ".join(f"{count} {action}" for action, count in counts.items())
                 + ". Nothing was changed: click Ship to act.")

    def ship(self) -> None:
        """Ship the chosen orders (`fulfilment.ship`, recorded as done from the notebook); one sentence each."""
        from . import ship
        shipments = self._chosen()
        if shipments is None:
            return
        with self._store() as store:
            self.outcomes = ship(store, self.clients, shipments, who="notebook")
        sentences = [outcome_sentence(outcome) for outcome in self.outcomes]
        self.result.value = "<ul class='bchooks-outcomes'>" + "".join(
            f"<li style='color:{'#cf222e' if o.status == 'failed' else 'inherit'}'>{escape(text)}</li>"
            for o, text in zip(self.outcomes, sentences)) + "</ul>"
        counts = {status: sum(o.status == status for o in self.outcomes) for status in ("shipped", "skipped",
                                                                                           "failed")}
        self.paste.value = ""
        for row in self.rows:
            row.tick.value = False
        self.say(f"Shipped {counts['shipped']}, skipped {counts['skipped']}, failed {counts['failed']}.",
                 ok=not counts["failed"])

    def packing_list(self) -> Path | None:
        """Write the packing list of the ticked orders (else of every order shown) to
        `exports/packing-<time>.html` and show a link to it."""
        keys = [row.key for row in self.rows if row.tick.value] or [row.key for row in self.rows]
        if not keys:
            self.say("No order to pack.", ok=False)
            return None
        with self._store() as store:
            page = packing_list_html(self.orders, self.items, keys, store=store)
        folder = Path(self.exports)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"packing-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.html"
        path.write_text(page, encoding="utf-8")
        href = path.as_posix()
        self.link.value = (f"<a href='{escape(href)}' download>Download {escape(path.name)}</a> "
                           "(open it in the browser and print it, or save it as PDF: one order a page)")
        self.say(f"Packing list of {len(keys)} order(s) written to {href}.")
        return path


def outcome_sentence(outcome: Any) -> str:
    """`Order 1234 (shop 42): shipped. <what the library said>`, one sentence per outcome."""
    shipment = outcome.shipment
    where = f" (shop {shipment.account_id})" if shipment.account_id else ""
    from ..secrecy import printable, redact
    message = printable(redact(str(outcome.message or "")), limit=500).strip()
    said = f"{message}" if message.startswith(outcome.status) else f"{outcome.status}" + (f", {message}" if message
                                                                                          else "")
    text = f"Order {shipment.order_id}{where}: {said}"
    return text + ("" if text.endswith(".") else ".")


__all__ = ["FulfilmentPanel", "lateness", "outcome_sentence", "parse_pasted"]
