"""The panels without a browser: set inputs, click, and check the sandbox, the store and the status line."""

import pytest

from bchooks import Config
from bchooks.widgets import EventFeed, ReceiverStatus, SimulatorPanel, WebhookPanel, html_table
from conftest import SECRET, free_port

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def local_receiver(engine_receiver):
    """Every panel here is driven on each engine's store: SQLite, then PostgreSQL."""
    return engine_receiver


@pytest.fixture
def config(sandbox_server, local_receiver):
    url, store = local_receiver
    return Config.load(env={}, secrets=SECRET, api_url=sandbox_server.url, token="sandbox-token", db=store.source,
                       receiver_url=url)


def test_register_refresh_unregister(config, sandbox_server):
    panel = WebhookPanel(config)
    assert panel.token.value == "" and "BCHOOKS_TOKEN" in panel.token.placeholder
    panel.events["product.updated"].value = True
    panel.register_button.click()
    assert "Registered webhook 1" in panel.status.value, panel.status.value
    hooks = list(sandbox_server.sandbox.webhooks.values())
    assert [h["events"] for h in hooks] == [["order.created", "order.updated", "product.updated"]]
    assert config.webhook_url in panel.table.value
    panel.unregister_button.click()
    assert sandbox_server.sandbox.webhooks == {} and "Unregistered 1 webhook" in panel.status.value
    assert "no webhooks registered" in panel.table.value


def test_registering_again_replaces_the_registration_of_the_url(config, sandbox_server):
    """Run All twice, or Register after the notebook registered from code: the receiver is never subscribed twice."""
    sandbox_server.sandbox.register(config.webhook_url, ["order.created"])
    sandbox_server.sandbox.register("http://elsewhere.test/hook", ["order.created"])
    panel = WebhookPanel(config)
    panel.events["product.updated"].value = True
    panel.register_button.click()
    assert "in place of 1 earlier registration(s) of this URL" in panel.status.value, panel.status.value
    hooks = sorted((h["url"], h["events"]) for h in sandbox_server.sandbox.webhooks.values())
    assert hooks == sorted([("http://elsewhere.test/hook", ["order.created"]),
                            (config.webhook_url, ["order.created", "order.updated", "product.updated"])])


def test_wrong_token_reads_as_a_sentence(config):
    panel = WebhookPanel(config)
    panel.token.value = "wrong"
    panel.refresh_button.click()
    assert "rejected the access token" in panel.status.value and "Traceback" not in panel.status.value
    assert "wrong" not in panel.status.value


def test_unreachable_api(config):
    panel = WebhookPanel(config.replace(api_url=f"http://127.0.0.1:{free_port()}"))
    panel.register_button.click()
    assert "Cannot connect to the API at http://127.0.0.1:" in panel.status.value


def test_bad_inputs_are_refused_before_sending(config, sandbox_server):
    panel = WebhookPanel(config)
    panel.url.value = "not a url"
    panel.register_button.click()
    assert "absolute http(s) URL" in panel.status.value
    panel.url.value = config.webhook_url
    for box in panel.events.values():
        box.value = False
    panel.register_button.click()
    assert "Choose at least one event type" in panel.status.value
    assert sandbox_server.sandbox.webhooks == {}


def test_simulator_direct_and_through_the_sandbox(config, local_receiver, sandbox_server):
    _, store = local_receiver
    panel = SimulatorPanel(config)
    panel.count.value = 7
    panel.send_button.click()
    assert panel.last.ok == 7 and panel.progress.value == 7 and "2xx 7" in panel.status.value
    panel.send_button.click()  # a second click makes new events, not duplicates
    assert store.count() == 14
    panel.target.value = "sandbox"
    panel.event_type.value = "order.updated"
    panel.send_button.click()
    assert "no webhook is subscribed to order.updated" in panel.status.value
    sandbox_server.sandbox.register(config.webhook_url, ["order.updated"])
    panel.count.value = 3
    panel.send_button.click()
    assert panel.last.ok == 3 and "through the sandbox" in panel.status.value
    assert store.count(type="order.updated") == 3


def test_simulator_without_secret_says_so(config):
    panel = SimulatorPanel(config.replace(secrets=()))
    panel.send_button.click()
    assert "BCHOOKS_SECRET is not set" in panel.status.value


def test_feed_filters_and_escapes(config, local_receiver):
    from bchooks.wire import parse_envelope
    from conftest import envelope
    _, store = local_receiver
    body = envelope(type="order.created", payload={"id": EVIL})
    store.append(body, parse_envelope(body))
    body = envelope(type="product.updated", payload={"id": "7"})
    store.append(body, parse_envelope(body))
    feed = EventFeed(config)
    feed.refresh_button.click()
    assert [row["type"] for row in feed.rows] == ["product.updated", "order.created"]
    assert EVIL not in feed.table.value and "&lt;img src=x onerror=alert(1)&gt;" in feed.table.value
    feed.type_filter.value = "order.created"
    feed.refresh_button.click()
    assert [row["resource"] for row in feed.rows] == [EVIL] and "Showing 1 of 2" in feed.status.value


def test_feed_on_a_broken_database(config, tmp_path):
    (tmp_path / "junk.db").write_text("junk" * 1000)
    feed = EventFeed(config.replace(db=str(tmp_path / "junk.db")))
    feed.refresh_button.click()
    assert "not a bchooks event store" in feed.status.value


def test_receiver_status(config):
    status = ReceiverStatus(config)
    status.refresh_button.click()
    assert "is up: 0 event(s) stored" in status.status.value
    down = ReceiverStatus(config.replace(receiver_url=f"http://127.0.0.1:{free_port()}/webhook"))
    down.refresh_button.click()
    assert "is not answering" in down.status.value and down.health is None


def test_api_text_is_escaped_in_tables_and_status(config, sandbox_server):
    sandbox_server.sandbox.register(f"http://x.test/{EVIL}", ["order.created"])
    panel = WebhookPanel(config)
    panel.refresh_button.click()
    assert EVIL not in panel.table.value and "&lt;img" in panel.table.value
    panel.say(EVIL, ok=False)
    assert EVIL not in panel.status.value
    assert "<script>" not in html_table([{"a": "<script>"}], ["a"])


def test_operations_panel_replays_and_reconciles(config, sandbox_server, local_receiver):
    from bchooks.processing.handlers import Registry
    from bchooks.widgets import OperationsPanel
    from bchooks.processing.worker import Worker
    from conftest import envelope
    from bchooks.wire import parse_envelope
    _, store = local_receiver
    body = envelope(payload={"id": EVIL})
    store.append(body, parse_envelope(body))
    registry = Registry()
    registry.on("*", name="broken", retries=0)(lambda e: 1 / 0)
    Worker(store, registry).run(once=True)
    panel = OperationsPanel(config)
    panel.refresh_button.click()
    assert "1 failed or dead" in panel.status.value and "ZeroDivisionError" in panel.table.value
    assert "No reconciliation yet" in panel.reconciliation.value
    panel.replay_button.click()
    assert "1 dead handler run(s) back to pending" in panel.status.value
    sandbox_server.sandbox.trigger("order.created", 4)  # no webhook: the store misses them
    panel.reconcile_button.click()
    assert "4 missing" in panel.status.value and "4 checked, 4 missing, 0 stale" in panel.reconciliation.value


def test_the_shop_panel_connects_polls_and_never_shows_the_password(config, sandbox_server, tmp_path):
    from bchooks.widgets import ShopPanel
    config = config.replace(shops=str(tmp_path / "shops.json"))
    sandbox_server.sandbox.trigger("order.created", 4)
    panel = ShopPanel(config)
    panel.poll_button.click()
    assert "No shop is connected yet" in panel.status.value
    panel.subdomain.value, panel.password.value = "sandbox-shop", "wrong"
    panel.connect_button.click()
    assert "rejected the subdomain or store password" in panel.status.value and "wrong" not in panel.status.value
    assert panel.password.value == ""  # used once, gone
    panel.password.value = "sandbox-password"
    panel.connect_button.click()
    assert "Connected shop 1234567 (Sandbox Shop)" in panel.status.value
    assert "1234567" in panel.table.value and "sandbox-password" not in panel.table.value
    panel.poll_button.click()
    assert "shop 1234567: 4 of 4 orders read were new or changed, 20 of 20 products" in panel.status.value
    assert "never" not in panel.table.value  # last polled, now


def test_the_operations_panel_counts_every_failure_not_the_rows_it_shows(config, local_receiver):
    from bchooks.widgets import OperationsPanel
    from test_worker import fail_310
    _, store = local_receiver
    fail_310(store)
    panel = OperationsPanel(config)
    panel.refresh_button.click()
    assert "Showing 20 of 310 failed or dead handler runs, newest first." in panel.status.value, panel.status.value
    assert len(panel.rows) == 20 and panel.table.value.count("<tr>") == 1 + 20


def test_panels_show_the_current_state_when_displayed(config, sandbox_server, local_receiver):
    """Built early, displayed later (a notebook's Run All): the panel shows the store and the API as they are then."""
    from IPython.core.formatters import format_display_data
    from bchooks.shops.client import BigCartelClient
    from bchooks.shops.reconcile import reconcile
    from bchooks.widgets import OperationsPanel
    _, store = local_receiver
    webhooks, operations = WebhookPanel(config), OperationsPanel(config)
    sandbox_server.sandbox.register(config.webhook_url, ["order.created"])
    sandbox_server.sandbox.trigger("order.created", 3)  # delivered in the background: maybe stored, maybe not yet
    with BigCartelClient.from_config(config) as client:
        checked = reconcile(store, client).checked
    format_display_data(webhooks)
    assert config.webhook_url in webhooks.table.value and "1 webhook(s) registered" in webhooks.status.value
    format_display_data(operations)
    assert f"{checked} checked" in operations.reconciliation.value and checked == 3
    assert "No failed or dead handler runs." in operations.status.value


def test_the_operations_panel_never_creates_a_store(config, tmp_path):
    from IPython.core.formatters import format_display_data
    from bchooks.widgets import OperationsPanel
    panel = OperationsPanel(config.replace(db=str(tmp_path / "missing.db")))
    format_display_data(panel)
    panel.replay_button.click()
    assert "No event store at" in panel.status.value and list(tmp_path.glob("missing*")) == []
