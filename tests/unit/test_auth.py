"""API keys: which requests get through (the one rule, whatever the header order)."""

import pytest

from klarna_pd.serving.auth import APIKeys

pytestmark = pytest.mark.unit

KEYS = APIKeys(["k" * 16 + "-first", "second-key-0123456789"])
FIRST, SECOND = "k" * 16 + "-first", "second-key-0123456789"


@pytest.mark.parametrize("headers", [
    [(b"authorization", f"Bearer {FIRST}".encode())],
    [(b"Authorization", f"bearer {SECOND}".encode())],
    [(b"x-api-key", SECOND.encode())],
    [(b"X-API-Key", f"  {FIRST} ".encode())],
    [(b"x-api-key", FIRST.encode()), (b"authorization", f"Bearer {SECOND}".encode())],
])
def test_valid_credentials_get_through(headers):
    assert KEYS.allowed(headers)


@pytest.mark.parametrize("headers", [
    [],
    [(b"authorization", b"Bearer ")],
    [(b"authorization", FIRST.encode())],  # no scheme
    [(b"authorization", f"Basic {FIRST}".encode())],
    [(b"x-api-key", FIRST[:-1].encode())],  # a prefix of a key
    [(b"x-api-key", (FIRST + "x").encode())],  # a key plus more
    [(b"x-api-key", (FIRST + "," + SECOND).encode())],
])
def test_anything_else_is_refused(headers):
    assert not KEYS.allowed(headers)


@pytest.mark.parametrize("order", ["wrong key first", "valid bearer first"])
def test_a_wrong_key_beside_a_valid_one_is_refused_in_either_order(order):
    """Issue 15 item 7: the answer no longer depends on which header comes first."""
    wrong = (b"x-api-key", b"wrong-key-wrong-key")
    valid = (b"authorization", f"Bearer {FIRST}".encode())
    headers = [wrong, valid] if order == "wrong key first" else [valid, wrong]
    assert not KEYS.allowed(headers)


def test_no_keys_is_a_configuration_error():
    with pytest.raises(ValueError, match="at least one non-empty key"):
        APIKeys(["", ""])


@pytest.mark.parametrize("env", [
    {"KLARNA_PD_API_KEYS": "secret-valid-key-0123456789,short"},
    {"KLARNA_PD_API_KEYS": "secret-valid-key-0123456789", "KLARNA_PD_MAX_BATCH_SIZE": "3"},
])
def test_a_settings_error_never_prints_the_api_keys(env, monkeypatch):
    """A rule between settings printed every setting it was given, the keys among them, into the log."""
    from pydantic import ValidationError

    from klarna_pd.settings import Settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as err:
        Settings()
    assert "secret-valid-key" not in str(err.value) and "at least" in str(err.value)
    monkeypatch.delenv("KLARNA_PD_MAX_BATCH_SIZE", raising=False)
    monkeypatch.setenv("KLARNA_PD_API_KEYS", "secret-valid-key-0123456789")
    assert "secret-valid-key" not in repr(Settings())
