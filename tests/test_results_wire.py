"""What a leader publishes through a coordinator travels as text: every result survives the
trip, every error is rebuilt as a fresh object of its class, and text that is not a result
(a damaged or hostile entry in a shared store) is a transient failure, never a sign-out."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from logto_core.changes import (
    Refreshed,
    SignedIn,
    decode_refreshed,
    decode_signed_in,
    encode_result,
)
from logto_core.errors import (
    LogtoError,
    OAuthError,
    SignInRequiredError,
    StorageError,
    TokenValidationError,
    TransportError,
    error_from_data,
    error_to_data,
)
from logto_core.session import CachedAccessToken, TokenKey

text = st.text(min_size=1, max_size=40)
maybe_text = st.none() | text
token_keys = st.builds(
    TokenKey.of,
    resource=maybe_text,
    organization_id=maybe_text,
    scopes=st.none() | st.lists(st.text(alphabet="abc:", min_size=1, max_size=8), max_size=3),
)
entries = st.none() | st.builds(
    CachedAccessToken,
    token=text,
    expires_at=st.floats(0, 2e9),
    scope=maybe_text,
    obtained_at=st.none() | st.floats(0, 2e9),
)
errors = st.none() | st.one_of(
    st.builds(lambda m: TransportError(m, code="transport.timeout", status=503), text),
    st.builds(lambda m: SignInRequiredError(m, code="sign_in_required.grant_dead"), text),
    st.builds(
        lambda e, d: OAuthError(e, error_description=d, status=400, hint="check the app id"),
        st.from_regex(r"[a-z_]{1,20}", fullmatch=True),
        maybe_text,
    ),
    st.builds(lambda m: TokenValidationError(m, code="id_token.exp", claim="exp"), text),
)


def same_error(a: LogtoError | None, b: LogtoError | None) -> bool:
    if a is None or b is None:
        return a is b
    public = {k: v for k, v in vars(a).items() if not k.startswith("_")}
    return type(a) is type(b) and a.message == b.message and public == vars(b)


@given(maybe_text, maybe_text, token_keys, entries, errors)
def test_a_refresh_result_survives_the_trip(
    refresh_token: str | None,
    id_token: str | None,
    key: TokenKey,
    entry: CachedAccessToken | None,
    error: LogtoError | None,
) -> None:
    result = Refreshed(refresh_token, id_token, key, entry, error)
    back = decode_refreshed(encode_result(result))
    assert (back.refresh_token, back.id_token, back.token_key, back.entry) == (
        refresh_token,
        id_token,
        key,
        entry,
    )
    assert same_error(result.error, back.error)
    assert back.dead == result.dead and back.retires_token == result.retires_token
    if error is not None:
        assert back.error is not error  # a fresh object for every follower


@given(text, maybe_text, maybe_text, entries, errors)
def test_a_sign_in_result_survives_the_trip(
    state: str,
    id_token: str | None,
    refresh_token: str | None,
    entry: CachedAccessToken | None,
    error: LogtoError | None,
) -> None:
    result = SignedIn(state, id_token, refresh_token, entry, error)
    back = decode_signed_in(encode_result(result), state)
    assert (back.state, back.id_token, back.refresh_token, back.entry) == (
        state,
        id_token,
        refresh_token,
        entry,
    )
    assert same_error(result.error, back.error)


@given(st.one_of(st.text(max_size=200), st.binary(max_size=50), st.integers(), st.none()))
def test_anything_else_is_a_transient_failure(garbage: Any) -> None:
    refreshed = decode_refreshed(garbage)
    if refreshed.error is None:  # only a real encoding decodes without error
        assert isinstance(garbage, str)
        return
    assert isinstance(refreshed.error, TransportError)
    assert refreshed.error.code == "coordination.result_invalid"
    assert not refreshed.dead and not refreshed.retires_token
    signed_in = decode_signed_in(garbage, "state-1")
    assert signed_in.error is not None or isinstance(garbage, str)


def test_another_attempts_result_is_not_adopted() -> None:
    published = encode_result(SignedIn("state-a", "id", "rt", None, None))
    assert decode_signed_in(published, "state-a").refresh_token == "rt"
    other = decode_signed_in(published, "state-b")
    assert other.refresh_token is None and isinstance(other.error, TransportError)
    # Nor a sign-in result where a refresh result belongs, or the other way round.
    assert decode_refreshed(published).error is not None
    refreshed = encode_result(Refreshed("rt", None, TokenKey(), None, None))
    assert decode_signed_in(refreshed, "state-a").error is not None


def test_a_rebuilt_error_keeps_its_class_and_plain_attributes_only() -> None:
    error = StorageError("the storage failed", code="storage.write")
    error.__cause__ = OSError("disk full")
    error._private = b"bytes"  # type: ignore[attr-defined]
    back = error_from_data(error_to_data(error))
    assert type(back) is StorageError and back.code == "storage.write"
    assert back.__cause__ is None and not hasattr(back, "_private")


def test_hostile_error_data_is_bounded_and_cannot_set_dunder_attributes() -> None:
    data = {
        "class": "OAuthError",
        "message": "x" * 100_000,
        "attributes": {"__class__": "str", "_hint": "y", "code": "oauth.invalid_grant", "n": 1},
    }
    back = error_from_data(data)
    assert type(back) is OAuthError and len(back.message) <= 4096
    assert back.code == "oauth.invalid_grant" and not hasattr(back, "_hint")
    unknown = error_from_data({"class": "ValueError", "message": "m"})
    assert type(unknown) is LogtoError
    assert isinstance(error_from_data("not a dict"), TransportError)
