import io
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bchooks.receiving.receiver import create_app
from bchooks.receiving.signing import sign
from conftest import SECRET, envelope, signed
from wsgi import call


def test_stores_verified_event(app, store):
    body = envelope()
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 200 and reply.json() == {"status": "stored", "id": 1}
    assert reply.headers["Content-Type"] == "application/json"
    assert store.get(1).body == body and store.get(1).signature_header == sign(body, SECRET)


def test_duplicate_delivery_answers_200_duplicate(app, store):
    body = envelope()
    call(app, body=body, headers=signed(body))
    reply = call(app, body=body, headers=signed(body, header="X-Bigcartel-Signature"))
    assert reply.status == 200 and reply.json() == {"status": "duplicate", "id": 1}
    assert store.count() == 1


def test_guide_format_and_header(app, store):
    body = b'{"type":"order.created","data":{"id":"NGRP-7"}}'
    reply = call(app, body=body, headers=signed(body, header="X-Bigcartel-Signature"))
    assert reply.status == 200
    event = store.get(reply.json()["id"])
    assert (event.account_id, event.resource_id) == (None, "NGRP-7")


def test_either_header_may_carry_the_valid_signature(app, store):
    body = envelope()
    reply = call(app, body=body, headers={"X-Webhook-Signature": "0" * 64, "X-Bigcartel-Signature": sign(body, SECRET)})
    assert reply.status == 200


def test_rotated_secrets(config, store):
    app = create_app(config.replace(secrets=("new", SECRET)), store)
    for secret in ("new", SECRET):
        body = envelope(payload={"id": secret})
        assert call(app, body=body, headers=signed(body, secret)).status == 200


@pytest.mark.parametrize("headers,reason", [
    ({}, "missing_signature"),
    ({"X-Webhook-Signature": sign(b"other", SECRET)}, "invalid_signature"),
    ({"X-Webhook-Signature": ""}, "invalid_signature"),
    ({"X-Webhook-Signature": "not hex"}, "invalid_signature"),
])
def test_bad_signature_is_401_and_recorded_without_body(app, store, db_path, headers, reason):
    body = envelope()
    reply = call(app, body=body, headers=headers)
    assert reply.status == 401 and reply.json()["error"] == reason
    assert SECRET not in reply.body.decode()
    assert store.count() == 0
    rejection = store.rejections()[0]
    assert rejection["reason"] == reason and rejection["size"] == len(body) and rejection["path"] == "/webhook"
    dump = b"".join(line.encode() for line in sqlite3.connect(db_path).iterdump())
    assert b"NGRP-000001" not in dump


def test_valid_signature_but_not_json_is_400(app, store):
    body = b"definitely not json"
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 400 and reply.json()["error"] == "invalid_json"
    assert store.count() == 0


@pytest.mark.parametrize("body", [b'{"payload":{}}', b'[1,2]', b'{"type":42}'])
def test_json_without_string_type_is_422(app, store, body):
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 422 and reply.json()["error"] == "invalid_envelope"
    assert store.count() == 0


def test_unknown_type_is_stored(app, store):
    body = envelope(type="inventory.teleported")
    assert call(app, body=body, headers=signed(body)).status == 200
    assert store.get(1).type == "inventory.teleported"


class ExplodingStream(io.BytesIO):
    def read(self, *args):
        raise AssertionError("the body was read although Content-Length was over the limit")


def test_declared_oversize_body_is_413_before_reading(app, store):
    reply = call(app, headers={"Content-Length": str(10 ** 9)}, content_length=False, stream=ExplodingStream())
    assert reply.status == 413 and reply.json()["error"] == "body_too_large"
    assert store.rejections()[0] == {**store.rejections()[0], "reason": "body_too_large", "size": 10 ** 9}


def test_chunked_body_over_limit_is_413(config, store):
    app = create_app(config.replace(max_body=1000), store)
    reply = call(app, body=b"x" * 5000, content_length=False, **{"wsgi.input_terminated": True})
    assert reply.status == 413 and store.count() == 0


def test_chunked_body_within_limit_is_read(app, store):
    body = envelope()
    reply = call(app, body=body, headers=signed(body), content_length=False, **{"wsgi.input_terminated": True})
    assert reply.status == 200 and store.get(1).body == body


def test_body_shorter_than_content_length_is_400(app, store):
    body = envelope()
    reply = call(app, body=body, headers={**signed(body), "Content-Length": str(len(body) + 10)},
                 content_length=False)
    assert reply.status == 400 and store.count() == 0


def test_locked_store_answers_503_with_retry_after_and_stores_nothing(config, db_path):
    from bchooks import EventStore
    store = EventStore(db_path, busy_timeout=0.05)
    app = create_app(config, store)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    body = envelope()
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 503 and reply.headers["Retry-After"] == str(config.retry_after)
    assert reply.json()["error"] == "store_unavailable"
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.count() == 0
    assert call(app, body=body, headers=signed(body)).status == 200  # recovers by itself
    store.close()


def test_other_methods_405_and_unknown_paths_404_are_json(app):
    reply = call(app, method="GET")
    assert reply.status == 405 and reply.json()["error"] == "method_not_allowed"
    assert "POST" in reply.headers.get("Allow", "")
    reply = call(app, method="GET", path="/events")
    assert reply.status == 404 and reply.json()["error"] == "not_found"


def test_healthz_reports_count(app, store):
    body = envelope()
    call(app, body=body, headers=signed(body))
    reply = call(app, method="GET", path="/healthz")
    assert reply.status == 200 and reply.json()["events"] == 1 and reply.json()["store"] == "ok"


def test_configurable_path(config, store):
    app = create_app(config.replace(path="/hooks/bigcartel"), store)
    body = envelope()
    assert call(app, path="/hooks/bigcartel", body=body, headers=signed(body)).status == 200
    assert call(app, path="/webhook", body=body, headers=signed(body)).status == 404


def test_nothing_serves_stored_payloads(app):
    body = envelope()
    call(app, body=body, headers=signed(body))
    for path in ("/", "/events", "/events/1", "/webhook/1", "/healthz"):
        assert b"NGRP-000001" not in call(app, method="GET", path=path).body


header_values = st.one_of(st.none(), st.text(max_size=80), st.from_regex(r"[0-9a-fA-F]{64}", fullmatch=True),
                          st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=2000), st.builds(lambda t: envelope(type=t), st.text(max_size=20))),
       webhook=header_values, guide=header_values, sign_it=st.booleans())
def test_property_no_5xx_and_nothing_unverified_is_stored(app, store, body, webhook, guide, sign_it):
    headers = {}
    if webhook is not None:
        headers["X-Webhook-Signature"] = webhook
    if guide is not None:
        headers["X-Bigcartel-Signature"] = guide
    if sign_it:
        headers["X-Webhook-Signature"] = sign(body, SECRET)
    before = store.count()
    reply = call(app, body=body, headers=headers)
    assert reply.status < 500
    valid = sign(body, SECRET)
    verified = any(isinstance(v, str) and valid in [part.strip().lower() for part in v.split(",")]
                   for v in headers.values())
    if reply.status == 200:
        assert verified
        assert store.get(reply.json()["id"]).body == body
    else:
        assert store.count() == before


def test_a_lone_surrogate_is_stored_with_its_text_columns_escaped(app, store, db_path):
    """What a JavaScript string cut inside an emoji serialises to: the exact bytes are kept, the id is stored as the
    escape's six characters, and the README's SQL still reads every row."""
    body = b'{"account_id":"1","type":"order.created","payload":{"id":"\\ud83d","name":"cut \\ud83d"}}'
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 200 and reply.json()["status"] == "stored"
    event = store.get(reply.json()["id"])
    assert event.body == body and event.resource_id == "\\ud83d"
    assert sqlite3.connect(db_path).execute("SELECT json_extract(body, '$.type') FROM events").fetchall() == [
        ("order.created",)]


def test_a_type_that_is_not_unicode_text_is_422(app, store):
    body = b'{"type":"order.\\udc00","payload":{}}'
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 422 and "lone surrogate" in reply.json()["message"] and store.count() == 0


@pytest.mark.parametrize("body,says", [
    ('{"type":"order.created"}'.encode("utf-16"), "NUL bytes"),
    ('{"type":"order.created"}'.encode("utf-16-le"), "NUL bytes"),
    ('{"type":"order.created"}'.encode("utf-32"), "NUL bytes"),
    (b"\xef\xbb\xbf" + b'{"type":"order.created"}', "byte-order mark"),
    (b'{"type":"order.created","payload":{"total":NaN}}', "NaN"),
    (b'{"type":"order.created","payload":{"total":Infinity}}', "Infinity"),
    (b'{"type":"order.created","payload":{"total":-Infinity}}', "-Infinity"),
    (b'{"type":"order.created","payload":' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    (b'{"type":"order.created","payload":{"n":' + b"9" * 5000 + b"}}", "more than 4300 digits"),
    (b'{"type":"order.created","payload":{"name":"caf\xe9"}}', "not UTF-8"),
    (b'{"type":"order.created",', "not valid JSON"),
])
def test_bodies_that_are_not_strict_utf8_json_are_400_saying_why(app, store, db_path, body, says):
    reply = call(app, body=body, headers=signed(body))
    assert reply.status == 400 and reply.json()["error"] == "invalid_json"
    assert says in reply.json()["message"]
    assert store.count() == 0


def test_every_stored_body_reads_with_sqlite_json(app, store, db_path):
    bodies = [envelope(payload={"id": "A", "name": "caf\u00e9 \U0001F600"}), envelope(payload={"id": "B", "x": 1e308}),
              b'{"type":"order.created","payload":{"id":"C","n":' + b"9" * 4000 + b"}}"]
    for body in bodies:
        assert call(app, body=body, headers=signed(body)).status == 200
    rows = sqlite3.connect(db_path).execute("SELECT json_extract(body, '$.type') FROM events").fetchall()
    assert rows == [("order.created",)] * 3


def test_a_repeated_signature_header_verifies_when_one_value_matches(app, store):
    body = envelope()
    joined = f"{'0' * 64}, {sign(body, SECRET)}"  # what a WSGI server makes of the header sent twice
    reply = call(app, body=body, headers={"X-Webhook-Signature": joined})
    assert reply.status == 200 and store.get(reply.json()["id"]).signature_header == sign(body, SECRET)
    reply = call(app, body=body, headers={"X-Webhook-Signature": f"{'0' * 64}, {'1' * 64}"})
    assert reply.status == 401 and reply.json()["error"] == "invalid_signature"


def test_healthz_says_which_engine_and_schema(app, store):
    from bchooks.store import SCHEMA_VERSION
    reply = call(app, method="GET", path="/healthz").json()
    assert reply["engine"] == "sqlite" and reply["schema"] == SCHEMA_VERSION
