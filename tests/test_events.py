import json

import pytest

from bchooks.errors import InvalidEnvelope, InvalidJSON
from bchooks.wire import EVENT_TYPES, parse_envelope


def body(document):
    return json.dumps(document).encode()


def test_docs_envelope_flat_payload():
    env = parse_envelope(body({"account_id": "12345", "type": "order.created",
                               "payload": {"id": "NGRP-090092", "total": "45.0",
                                           "updated_at": "2024-05-01T12:00:00.000Z"}}))
    assert (env.type, env.account_id, env.resource_id, env.updated_at) == \
        ("order.created", "12345", "NGRP-090092", "2024-05-01T12:00:00.000Z")
    assert (env.format, env.shape) == ("docs", "flat")


def test_docs_envelope_jsonapi_payload():
    env = parse_envelope(body({"account_id": 12345, "type": "order.updated", "payload": {
        "data": {"id": "NGRP-1", "type": "orders", "attributes": {"updated_at": "2024-05-02T00:00:00.000Z"}},
        "included": []}}))
    assert (env.account_id, env.resource_id, env.updated_at, env.shape) == \
        ("12345", "NGRP-1", "2024-05-02T00:00:00.000Z", "jsonapi")


def test_guide_envelope_has_no_account():
    env = parse_envelope(body({"type": "product.updated", "data": {"id": 77, "name": "Tee"}}))
    assert (env.format, env.account_id, env.resource_id, env.updated_at) == ("guide", None, "77", None)


def test_guide_envelope_with_jsonapi_data():
    env = parse_envelope(body({"type": "order.created", "data": {"data": {"id": "NGRP-2", "type": "orders",
                                                                           "attributes": {}}}}))
    assert (env.format, env.shape, env.resource_id) == ("guide", "jsonapi", "NGRP-2")


def test_payload_with_id_only():
    env = parse_envelope(body({"account_id": "1", "type": "product.deleted", "payload": {"id": "99"}}))
    assert env.resource_id == "99" and env.updated_at is None
    env = parse_envelope(body({"account_id": "1", "type": "account.closed", "payload": "1"}))
    assert (env.resource_id, env.shape) == ("1", "scalar")


def test_unknown_type_is_kept():
    env = parse_envelope(body({"type": "shipment.teleported", "payload": {}}))
    assert env.type == "shipment.teleported" and env.type not in EVENT_TYPES


def test_odd_field_types_are_tolerated():
    env = parse_envelope(body({"type": "order.created", "account_id": True, "payload": {"id": [1], "updated_at": 5}}))
    assert (env.account_id, env.resource_id, env.updated_at) == (None, None, None)


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe\x00", b"{", b"[" * 100000 + b"]" * 100000])
def test_raise_on_not_json(raw):
    with pytest.raises(InvalidJSON):
        parse_envelope(raw)


@pytest.mark.parametrize("document", [[], "order.created", 1, None, {}, {"type": 5}, {"type": ""},
                                      {"payload": {}}, {"type": ["order.created"]}])
def test_raise_on_missing_type(document):
    with pytest.raises(InvalidEnvelope):
        parse_envelope(body(document))


def test_catalog_matches_docs():
    assert len(EVENT_TYPES) == 10 and "account.deauthorized" in EVENT_TYPES and "product.deleted" in EVENT_TYPES
