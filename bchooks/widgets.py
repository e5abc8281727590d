"""ipywidgets panels for JupyterLab, thin over the library.

`WebhookPanel`, `SimulatorPanel`, `EventFeed` and `ReceiverStatus` each build their widgets in `__init__` and
display with `display(panel)`. Every error becomes one readable sentence in the panel's status line, and every
piece of text from a payload or an API is HTML-escaped before it reaches an HTML widget. The access token never
enters a widget: the password field is empty and only overrides `BCHOOKS_TOKEN` when something is typed in it.
"""

import html

import ipywidgets as w

from .shops.client import BigCartelClient, receiver_health, validate_webhook
from .errors import BchooksError, MissingStore
from .store import open_store
from .wire import EVENT_TYPES
from .simulator.runs import direct_shop, send_simulated, trigger_in_sandbox

DEFAULT_EVENTS = ("order.created", "order.updated")


def escape(value):
    return html.escape("" if value is None else str(value))


def html_table(rows, columns, empty="nothing yet"):
    """An HTML table of dict rows; every cell and header escaped."""
    if not rows:
        return f"<p class='bchooks-empty'><i>{escape(empty)}</i></p>"
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{escape(row.get(c))}</td>" for c in columns)
                   + "</tr>" for row in rows)
    return f"<table class='bchooks-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def sentence(error):
    """One readable sentence for any error raised by a panel action (every secret the process knows redacted)."""
    from .secrecy import printable, redact
    if isinstance(error, BchooksError):
        text = str(error)
    else:
        text = f"something unexpected went wrong ({type(error).__name__}: {error})"
    text = printable(redact(text), limit=2000)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


class Panel:
    """Base: a `widget` (VBox), a `status` line, and actions that never raise into the notebook."""

    widget = None

    def __init__(self):
        self.status = w.HTML(value="", layout=w.Layout(min_height="1.5em"))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def say(self, text, ok=True):
        color = "#1a7f37" if ok else "#cf222e"
        self.status.value = f"<span class='bchooks-status' style='color:{color}'>{escape(text)}</span>"

    def _action(self, function):
        def run(*_):
            try:
                function()
            except Exception as error:  # a widget callback must report, never raise
                self.say(sentence(error), ok=False)
        return run


class WebhookPanel(Panel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token = w.Password(description="Token", placeholder="using BCHOOKS_TOKEN" if config.token else
                                "paste an access token", layout=w.Layout(width="480px"))
        self.url = w.Text(value=config.webhook_url, description="Receiver URL", layout=w.Layout(width="480px"),
                          style={"description_width": "initial"})
        self.events = {name: w.Checkbox(value=name in DEFAULT_EVENTS, description=name, indent=False,
                                        layout=w.Layout(width="220px")) for name in EVENT_TYPES}
        self.register_button = w.Button(description="Register", button_style="primary", icon="plus")
        self.unregister_button = w.Button(description="Unregister", button_style="danger", icon="trash")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML()
        self.register_button.on_click(self._action(self.register))
        self.unregister_button.on_click(self._action(self.unregister))
        self.refresh_button.on_click(self._action(self.refresh))
        self.widget = w.VBox([
            w.HTML(f"<b>Webhooks at {escape(config.api_url)}</b>"), self.token, self.url,
            w.HTML("<span class='bchooks-note'>Event types (the sandbox's and the guide's registration only: Big "
                   "Cartel sends <i>every</i> type to an approved app's one webhook URL; filter with handlers)</span>"),
            w.GridBox(list(self.events.values()), layout=w.Layout(grid_template_columns="repeat(3, 230px)")),
            w.HBox([self.register_button, self.unregister_button, self.refresh_button]), self.status, self.table,
        ])

    def _repr_mimebundle_(self, **kwargs):
        self._action(self.refresh)()  # displayed as things are now (an error goes to the status line)
        return super()._repr_mimebundle_(**kwargs)

    def client(self):
        typed = self.token.value.strip()
        return BigCartelClient(self.config.api_url, typed or self.config.token, receiver_url=self.url.value.strip(),
                               token_source="the token typed in the panel" if typed else "BCHOOKS_TOKEN")

    def chosen(self):
        return [name for name, box in self.events.items() if box.value]

    def register(self):
        """Register the URL for the chosen events, in place of its earlier registrations (never subscribed twice)."""
        url, events = self.url.value.strip(), self.chosen()
        validate_webhook(url, events)  # (before anything is removed)
        with self.client() as client:
            replaced = client.unregister_all(url=url)
            webhook = client.register_webhook(url, events)
            self._show(client.list_webhooks())
        self.say(f"Registered webhook {webhook.get('id')} for {', '.join(webhook.get('events', []))}"
                 + (f", in place of {replaced} earlier registration(s) of this URL." if replaced else "."))

    def unregister(self):
        url = self.url.value.strip()
        with self.client() as client:
            removed = client.unregister_all(url=url)
            self._show(client.list_webhooks())
        self.say(f"Unregistered {removed} webhook(s) pointing at {url}." if removed
                 else f"No webhook points at {url}.", ok=bool(removed))

    def refresh(self):
        with self.client() as client:
            webhooks = client.list_webhooks()
        self._show(webhooks)
        self.say(f"{len(webhooks)} webhook(s) registered.")

    def _show(self, webhooks):
        rows = [{**hook, "events": ", ".join(hook.get("events", []))} for hook in webhooks]
        self.table.value = html_table(rows, ["id", "url", "events", "created_at"], empty="no webhooks registered")


class SimulatorPanel(Panel):
    TARGETS = (("the receiver directly", "direct"), ("through the sandbox", "sandbox"))

    def __init__(self, config, seed=None):
        super().__init__()
        self.config = config
        self.shop = direct_shop(seed)  # kept across clicks: every send makes new events
        self.event_type = w.Dropdown(options=EVENT_TYPES, value="order.created", description="Event")
        self.count = w.BoundedIntText(value=10, min=1, max=10000, description="Count")
        self.target = w.Dropdown(options=self.TARGETS, value="direct", description="Send to")
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Progress")
        self.send_button.on_click(self._action(self.send))
        self.widget = w.VBox([w.HTML("<b>Simulator</b>"), w.HBox([self.event_type, self.count]), self.target,
                              w.HBox([self.send_button, self.progress]), self.status])
        self.last = None

    def _advance(self, n):
        self.progress.value = min(self.progress.max, self.progress.value + n)

    def send(self):
        count, kind = self.count.value, self.event_type.value
        self.progress.max, self.progress.value = count, 0
        self.say(f"Sending {count} {kind} event(s)...")
        if self.target.value == "direct":
            summary = send_simulated(self.config, kind, count, shop=self.shop, progress=self._advance)
            where = f"to {self.config.webhook_url}"
        else:
            events, summary = trigger_in_sandbox(self.config, kind, count, progress=self._advance)
            if summary.sent + sum(summary.not_sent.values()) == 0:
                self.last = summary
                self.say(f"The sandbox made {len(events)} {kind} event(s), but no webhook is subscribed to "
                         f"{kind}: register one first (01_setup_webhooks).", ok=False)
                return
            where = "through the sandbox"
        self.last = summary
        self.progress.value = self.progress.max
        self.say(f"{kind} {where}: {summary}.", ok=summary.ok == summary.sent)


class EventFeed(Panel):
    def __init__(self, config, limit=20):
        super().__init__()
        self.config = config
        self.type_filter = w.Dropdown(options=[("all types", "")] + [(t, t) for t in EVENT_TYPES], value="",
                                      description="Type")
        self.limit = w.BoundedIntText(value=limit, min=1, max=1000, description="Latest")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML()
        self.refresh_button.on_click(self._action(self.refresh))
        self.widget = w.VBox([w.HTML("<b>Stored events</b>"), w.HBox([self.type_filter, self.limit,
                                                                      self.refresh_button]),
                              self.status, self.table])
        self.rows = []

    def refresh(self):
        with open_store(self.config) as store:
            events = store.latest(self.limit.value, type=self.type_filter.value or None)
            total = store.count()
        self.rows = [{"id": e.id, "received_at": e.received_at, "type": e.type, "account": e.account_id or "",
                      "resource": e.resource_id or ""} for e in events]
        self.table.value = html_table(self.rows, ["id", "received_at", "type", "account", "resource"],
                                      empty="no events stored yet")
        self.say(f"Showing {len(self.rows)} of {total} stored event(s), newest first.")


class ReceiverStatus(Panel):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.refresh_button = w.Button(description="Check receiver", icon="heartbeat")
        self.refresh_button.on_click(self._action(self.refresh))
        self.widget = w.HBox([self.refresh_button, self.status])
        self.health = None

    def refresh(self):
        self.health = None
        self.health = receiver_health(self.config.webhook_url)
        self.say(f"Receiver at {self.config.webhook_url} is up: {self.health['events']} event(s) stored.")


class OperationsPanel(Panel):
    """Failed and dead handler runs with a Replay button; the last reconciliation with a Reconcile button; the
    active alerts (`bchooks alerts`)."""

    def __init__(self, config, limit=20):
        super().__init__()
        self.config = config
        self.limit = limit
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.replay_button = w.Button(description="Replay dead", button_style="warning", icon="repeat")
        self.reconcile_button = w.Button(description="Reconcile", button_style="primary", icon="check")
        self.table = w.HTML()
        self.reconciliation = w.HTML()
        self.alerts = w.HTML()
        self.refresh_button.on_click(self._action(self.refresh))
        self.replay_button.on_click(self._action(self.replay))
        self.reconcile_button.on_click(self._action(self.reconcile))
        self.widget = w.VBox([w.HTML("<b>Handler failures and reconciliation</b>"),
                              w.HBox([self.refresh_button, self.replay_button, self.reconcile_button]),
                              self.status, self.reconciliation, self.alerts, self.table])
        self.rows = []
        self.active = []  # the active alerts, as dicts
        self.total = 0  # failed and dead runs in the store, of which `rows` are the newest

    def _repr_mimebundle_(self, **kwargs):
        self._action(self.refresh)()  # displayed as things are now (an error goes to the status line)
        return super()._repr_mimebundle_(**kwargs)

    def _store(self, create=True):
        return open_store(self.config, create=create)

    def refresh(self):
        from .shops.reconcile import last_reconciliation
        from .processing.worker import failure_count, failures, failures_shown
        with self._store(create=False) as store:  # (a read never creates the store)
            self.rows = failures(store, self.limit, self.config.secret_values())
            self.total = failure_count(store)
            last = last_reconciliation(store)
            self.active = store.alerts.active()
        self.alerts.value = self._alerts_html()
        self.table.value = html_table(self.rows, ["event_id", "type", "handler", "status", "attempts", "last_error"],
                                      empty="no failed or dead handler runs")
        self.reconciliation.value = escape(
            "No reconciliation yet." if last is None else
            f"Last reconciliation {last['started_at']}: " + (f"failed: {last['error']}" if last["error"] else
                                                              f"{last['checked']} checked, {last['missing']} missing, "
                                                              f"{last['stale']} stale."))
        shown = failures_shown(len(self.rows), self.total)
        self.say(shown[:1].upper() + shown[1:] + (", newest first." if self.rows else "."), ok=not self.rows)

    def _alerts_html(self):
        from .secrecy import redact
        if not self.active:
            return "<p class='bchooks-alerts'>No active alert.</p>"
        rows = [{"alert": a["key"], "since": a["started_at"], "message": redact(a["message"])} for a in self.active]
        return (f"<p class='bchooks-alerts' style='color:#cf222e'><b>{len(rows)} active alert(s)</b></p>"
                + html_table(rows, ["alert", "since", "message"]))

    def replay(self):
        from .processing.worker import replay
        with self._store(create=False) as store:
            count = replay(store, dead=True)
        self.refresh()
        self.say(f"{count} dead handler run(s) back to pending: the worker will run them again.")

    def reconcile(self):
        from .shops.reconcile import reconcile
        with self._store() as store, BigCartelClient.from_config(self.config) as client:
            result = reconcile(store, client)
        self.refresh()
        self.say(f"Reconciled: {result}.")


class ShopPanel(Panel):
    """Connect a shop with its subdomain and store password, list the connected shops, poll them now. The password
    field is emptied once used and never shown again; the file of credentials is `config.shops`."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.subdomain = w.Text(description="Subdomain", placeholder="yourshop (of yourshop.bigcartel.com)",
                                layout=w.Layout(width="480px"))
        self.password = w.Password(description="Password", placeholder="the store password",
                                   layout=w.Layout(width="480px"))
        self.connect_button = w.Button(description="Connect", button_style="primary", icon="plug")
        self.poll_button = w.Button(description="Poll now", icon="download")
        self.table = w.HTML()
        self.connect_button.on_click(self._action(self.connect))
        self.poll_button.on_click(self._action(self.poll))
        self.widget = w.VBox([w.HTML(f"<b>Shops read from {escape(config.api_url)}</b> (no webhooks needed: "
                                     "their orders and products are polled)"), self.subdomain, self.password,
                              w.HBox([self.connect_button, self.poll_button]), self.status, self.table])
        self.rows = []

    def _book(self):
        from .shops import ShopBook
        return ShopBook(self.config.shops)

    def connect(self):
        from .shops import connect_basic
        password, self.password.value = self.password.value, ""
        shop = connect_basic(self.config.api_url, self.subdomain.value.strip(), password, self._book())
        self.refresh()
        self.say(f"Connected shop {shop.account_id} ({shop.store_name or shop.subdomain}).")

    def poll(self):
        from .shops.poller import poll_shop
        shops = self._book().shops()
        if not shops:
            self.say("No shop is connected yet: give a subdomain and its password, then Connect.", ok=False)
            return
        with open_store(self.config) as store:
            results = [poll_shop(store, shop) for shop in shops]
        self.refresh()
        self.say(" ".join(f"{result}." for result in results))

    def refresh(self):
        last = {}
        try:
            with open_store(self.config, create=False) as store:
                last = store.cursors.last_polled()
        except MissingStore:
            pass  # (a read never creates the store)
        self.rows = [{**shop.public(), "last_polled": last.get(shop.account_id, "never")}
                     for shop in self._book().shops()]
        self.table.value = html_table(self.rows, ["account_id", "store_name", "kind", "subdomain", "last_polled"],
                                      empty="no shop connected")
