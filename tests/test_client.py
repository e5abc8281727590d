"""The client against the real sandbox (and small misbehaving servers) over loopback."""

import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from bchooks.shops.client import USER_AGENT, BigCartelClient
from bchooks.errors import ApiError, InputError
from conftest import free_port


def test_register_list_unregister(client, sandbox_server):
    created = client.register_webhook("http://127.0.0.1:8080/webhook", ["order.created", "order.updated"])
    assert created["id"] and created["events"] == ["order.created", "order.updated"] and created["created_at"]
    client.register_webhook("https://example.com/hook", "product.updated")
    assert [w["url"] for w in client.list_webhooks()] == ["http://127.0.0.1:8080/webhook", "https://example.com/hook"]
    client.unregister_webhook(created["id"])
    assert [w["url"] for w in client.list_webhooks()] == ["https://example.com/hook"]
    with pytest.raises(ApiError, match="404") as caught:
        client.unregister_webhook(created["id"])
    assert caught.value.status == 404


def test_unregister_all_optionally_by_url(client):
    for url in ("http://a.test/h", "http://b.test/h", "http://a.test/h"):
        client.register_webhook(url, ["order.created"])
    assert client.unregister_all(url="http://a.test/h") == 2
    assert [w["url"] for w in client.list_webhooks()] == ["http://b.test/h"]
    assert client.unregister_all() == 1 and client.list_webhooks() == []


def test_account_id_is_looked_up(client):
    assert client.account()["attributes"]["subdomain"] == "sandbox-shop"
    assert client.account_id == "1234567"


def test_orders_paginate_and_filter(client, sandbox_server):
    sandbox_server.sandbox.trigger("order.created", 45)
    orders = list(client.iter_orders(page_size=10))
    assert len(orders) == 45 and len({o["data"]["id"] for o in orders}) == 45
    updated = [o["data"]["attributes"]["updated_at"] for o in orders]
    assert updated == sorted(updated)
    assert all(any(i["type"] == "order_line_items" for i in o["included"]) for o in orders)
    since = updated[30]
    assert [o["data"]["attributes"]["updated_at"] for o in client.iter_orders(updated_since=since)] == updated[30:]
    one = client.get_order(orders[0]["data"]["id"])
    assert one["data"]["attributes"]["total"] == orders[0]["data"]["attributes"]["total"]
    assert {i["type"] for i in one["included"]} == {"currencies", "countries", "order_line_items"}


def test_wrong_token_says_so(sandbox_server):
    with BigCartelClient(sandbox_server.url, "wrong") as client:
        with pytest.raises(ApiError, match="rejected the access token") as caught:
            client.list_webhooks()
    assert caught.value.status == 401 and "wrong" not in str(caught.value)


@pytest.mark.parametrize("url", ["", "ftp://x.test/h", "/webhook", "http://", "http://exa mple.com/h"])
def test_bad_url_is_refused_before_sending(client, sandbox_server, url):
    with pytest.raises(InputError, match="absolute http"):
        client.register_webhook(url, ["order.created"])
    assert sandbox_server.sandbox.webhooks == {}


def test_unknown_or_no_event_types_list_the_valid_ones(client):
    with pytest.raises(InputError, match="unknown event type order.shipped; valid: account.updated"):
        client.register_webhook("http://x.test/h", ["order.shipped"])
    with pytest.raises(InputError, match="at least one"):
        client.register_webhook("http://x.test/h", [])


def test_unreachable_api_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with BigCartelClient(url, "t", retries=1, backoff=0) as client:
        with pytest.raises(ApiError, match=f"cannot connect to the API at {url}"):
            client.list_webhooks()


class Scripted:
    """A tiny WSGI server that answers from a script and counts hits per method."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.hits = []

        def app(environ, start_response):
            self.hits.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_USER_AGENT")))
            status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            start_response(status, [("Content-Type", "application/json")])
            return [body]

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        self.httpd = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def start(answers):
        servers.append(Scripted(answers))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("status", ["404 Not Found", "405 Method Not Allowed"])
def test_base_without_webhook_registration_explains_what_to_do(scripted, status):
    server = scripted([(status, b'{"errors":[{"title":"Not Found"}]}')])
    with BigCartelClient(server.url, "t", receiver_url="https://shop.example.com/webhook") as client:
        with pytest.raises(ApiError, match="offers no webhook registration") as caught:
            client.register_webhook("https://shop.example.com/webhook", ["order.created"])
    assert "set your app's webhook URL in Big Cartel" in str(caught.value)
    assert "https://shop.example.com/webhook" in str(caught.value)


def test_reads_retry_on_503_and_429(scripted):
    server = scripted([("503 Service Unavailable", b"{}"), ("429 Too Many Requests", b"{}"),
                       ("200 OK", b'{"data":[{"id":"42","type":"accounts"}]}')])
    with BigCartelClient(server.url, "t", backoff=0.01) as client:
        assert client.account_id == "42"
    assert [hit[0] for hit in server.hits] == ["GET"] * 3
    assert server.hits[0][2] == USER_AGENT and USER_AGENT.startswith("bchooks/")


def test_writes_are_never_retried(scripted):
    server = scripted([("503 Service Unavailable", b'{"errors":[{"detail":"maintenance"}]}'),
                       ("201 Created", b"{}")])
    with BigCartelClient(server.url, "t", backoff=0.01) as client:
        with pytest.raises(ApiError, match="503.*maintenance") as caught:
            client.register_webhook("http://x.test/h", ["order.created"])
    assert caught.value.status == 503 and caught.value.details == "maintenance"
    assert [hit[0] for hit in server.hits] == ["POST"]


def test_repr_hides_token():
    assert "s3cr3t" not in repr(BigCartelClient("http://x.test", "s3cr3t"))
