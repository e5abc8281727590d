import pytest

from bchooks.errors import ConfigError, InvalidSignature, MissingSignature
from bchooks.receiving.signing import Verifier, sign

VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_DIGEST = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_public_test_vector():
    assert sign(VECTOR_BODY, VECTOR_SECRET) == VECTOR_DIGEST
    Verifier(VECTOR_SECRET).verify(VECTOR_BODY, VECTOR_DIGEST)


def test_sign_is_lowercase_hex_of_raw_bytes():
    body = b'{"type": "order.created",  "payload": {}}'
    digest = sign(body, "k")
    assert digest == digest.lower() and len(digest) == 64
    assert digest != sign(b'{"type":"order.created","payload":{}}', "k")  # re-serialised bytes differ


def test_uppercase_and_whitespace_accepted():
    Verifier(VECTOR_SECRET).verify(VECTOR_BODY, "  " + VECTOR_DIGEST.upper() + "\t")


def test_rotation_any_secret_verifies():
    verifier = Verifier(["new-secret", VECTOR_SECRET])
    verifier.verify(VECTOR_BODY, VECTOR_DIGEST)
    verifier.verify(VECTOR_BODY, sign(VECTOR_BODY, "new-secret"))
    assert verifier.sign(VECTOR_BODY) == sign(VECTOR_BODY, "new-secret")


def test_raise_on_no_valid_signature_for_payload():
    with pytest.raises(InvalidSignature, match="does not match"):
        Verifier("other").verify(VECTOR_BODY, VECTOR_DIGEST)


def test_raise_on_tampered_body():
    with pytest.raises(InvalidSignature):
        Verifier(VECTOR_SECRET).verify(VECTOR_BODY + b" ", VECTOR_DIGEST)


def test_raise_on_missing_header():
    with pytest.raises(MissingSignature):
        Verifier("k").verify(b"x", None)


@pytest.mark.parametrize("header", [
    "", "   ", "zz", "g" * 64, VECTOR_DIGEST[:-1], VECTOR_DIGEST + "0", "é" * 64, "ａ" * 64, "0" * 100000,
    "sha256=" + VECTOR_DIGEST, "\x00" * 64,
])
def test_raise_on_malformed_header(header):
    with pytest.raises(InvalidSignature):
        Verifier(VECTOR_SECRET).verify(VECTOR_BODY, header)


@pytest.mark.parametrize("secrets", [[], "", [""], ["a", ""]])
def test_raise_on_empty_secret_at_start(secrets):
    with pytest.raises(ConfigError, match="BCHOOKS_SECRET"):
        Verifier(secrets)


def test_repr_hides_secrets():
    assert "hunter2" not in repr(Verifier(["hunter2", "swordfish"]))
    assert "swordfish" not in repr(Verifier(["hunter2", "swordfish"]))
