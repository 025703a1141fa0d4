"""Finding a request's secrets and removing them from provider text, in every encoding."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.excerpts import excerpt
from logto_core.http import HttpRequest
from logto_core.scrub import REDACTED, Scrubber, request_secrets
from tests.secret_leaks import leaks

# Secrets as the SDK meets them: visible ASCII, with the characters encoders change.
secret_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=8, max_size=48
)
# Text around them, from characters no secret form uses (so it must come out unchanged).
filler = st.text(alphabet=" \n\t\u00a0\u00e9\u4e2d\U0001f600", max_size=40)


def _basic(client_id: str, secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def test_request_secrets_from_basic_auth_and_form() -> None:
    request = HttpRequest.post_form(
        "https://t.example/oidc/token?token=in-query",
        [
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("code_verifier", "the-verifier"),
            ("redirect_uri", "https://app.example/cb"),
            ("client_id", "app"),
        ],
        headers={"Authorization": _basic("app", "p@ss word+/=")},
    )
    found = request_secrets(request)
    assert {"the-code", "the-verifier", "in-query", "p@ss word+/="} <= found
    assert "app:p@ss word+/=" in found  # the pair, decoded
    assert quote_plus("p@ss word+/=") in found  # the secret as Basic carries it
    assert _basic("app", "p@ss word+/=") in found  # the header value itself
    # What names the request is not secret.
    assert not {"authorization_code", "https://app.example/cb", "app"} & found


def test_request_secrets_of_other_grants_and_headers() -> None:
    request = HttpRequest.post_form(
        "https://t.example/oidc/token",
        [(name, f"{name}-value") for name in ("refresh_token", "client_secret", "device_code")]
        + [("subject_token", "st"), ("actor_token", "at-value"), ("resource", "https://api")],
        headers={"authorization": "Bearer the-bearer", "cookie": "sid=cookie-value"},
    )
    found = request_secrets(request)
    assert {
        "refresh_token-value",
        "client_secret-value",
        "device_code-value",
        "st",
        "at-value",
        "the-bearer",
        "Bearer the-bearer",
        "sid=cookie-value",
    } <= found
    assert "https://api" not in found
    # A malformed Basic value is still a secret as a whole.
    assert "Basic !!!" in request_secrets(
        HttpRequest("POST", "https://t/", (("authorization", "Basic !!!"),))
    )


def _encodings(secret: str) -> list[str]:
    """How an echo can carry a value (written out here, not taken from the scrubber)."""
    raw = secret.encode()
    forms = [
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        quote(secret),
        quote(quote_plus(secret), safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(secret, safe="")),
        json.dumps(secret)[1:-1],
        html.escape(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]
    # Inside a longer base64 text, at each of the three alignments.
    forms += [base64.b64encode(b"x" * n + raw + b"yz").decode() for n in range(3)]
    return forms


@settings(max_examples=150, deadline=None)
@given(secret=secret_text, before=filler, after=filler, which=st.integers(0, 12))
def test_every_encoding_is_removed(secret: str, before: str, after: str, which: int) -> None:
    form = _encodings(secret)[which]
    text = f"{before}{form}{after}"
    scrubbed = Scrubber([secret])(text)
    assert not leaks(scrubbed, [secret]), (form, scrubbed)
    assert scrubbed != text  # replaced by the marker (or, next to it, removed)
    assert scrubbed.startswith(before) and scrubbed.endswith(after)


@settings(max_examples=100, deadline=None)
@given(secret=secret_text, text=filler)
def test_text_without_secrets_is_unchanged(secret: str, text: str) -> None:
    assert Scrubber([secret])(text) == text


def test_the_oracle_sees_every_encoding() -> None:
    # Without the scrubber, each encoding is a leak: the tests above could fail.
    secret = "s3cr+t/with=special&chars% :~"
    for form in _encodings(secret):
        assert leaks(f"... {form} ...", [secret]) == [secret], form


def test_empty_scrubber_changes_nothing() -> None:
    scrubber = Scrubber(["", ""])
    assert not scrubber
    assert scrubber("abc") == "abc"
    assert scrubber.truncated("abc...") == "abc..."
    assert scrubber.excerpt("x" * 500, 10) == "x" * 10 + "..."


def test_several_secrets_and_overlaps() -> None:
    scrubber = Scrubber(["client-secret-1", "secret-1-and-more"])
    assert scrubber("a client-secret-1-and-more b") == f"a {REDACTED} b"
    assert scrubber("x client-secret-1 y secret-1-and-more z") == f"x {REDACTED} y {REDACTED} z"


def test_excerpt_scrubs_before_cutting() -> None:
    secret = "refresh-token-0123456789abcdef"
    scrubber = Scrubber([secret])
    for offset in range(0, 60, 7):
        text = "y" * (180 + offset) + secret + "z" * 5000
        shown = scrubber.excerpt(text, 200)
        assert len(shown) <= 203 and shown.endswith("...")
        # Not even the first half of the secret is left at the cut.
        assert secret[:8] not in shown, offset
    # A short text is scrubbed whole and not marked as cut.
    assert scrubber.excerpt(f"a {secret} b", 200) == f"a {REDACTED} b"


def test_truncated_drops_the_beginning_of_a_secret() -> None:
    secret = "refresh-token-0123456789abcdef"
    scrubber = Scrubber([secret])
    cut = excerpt("error: " + secret, 20)  # 'error: refresh-token...'
    assert cut.endswith("...") and "refresh" in cut
    assert scrubber.truncated(cut) == "error: ..."
    # A complete text keeps its end, even when it happens to look like one.
    assert scrubber.truncated("error: refresh") == "error: refresh"
    assert scrubber.truncated(f"{secret} and refr...") == f"{REDACTED} and ..."


def test_scrubbing_a_body_with_many_secrets_stays_fast() -> None:
    secrets = [f"secret-number-{n:04d}-abcdefgh" for n in range(12)]
    body = urlencode([("x", s) for s in secrets]) * 2000  # ~1 MiB
    scrubbed = Scrubber(secrets)(body)
    assert not leaks(scrubbed[:5000], secrets)
    assert scrubbed.count(REDACTED) == 24000


@pytest.mark.parametrize("secret", ["[redacte", "d]x", "e", "]", "acted]", "[r", "sec ret"])
def test_secrets_sharing_text_with_the_marker_or_made_by_replacing(secret: str) -> None:
    scrubber = Scrubber([secret])
    for text in (secret, f"{secret}x", f"[{secret}]", f"{secret}{secret}]x", "sec\x00ret " * 3):
        for shown in (scrubber(text), scrubber.excerpt(text * 40, 30), scrubber.truncated(text)):
            assert secret not in shown, (text, shown)


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(
        alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=6
    ),
    text=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7E), max_size=60),
)
def test_even_short_secrets_never_survive(secret: str, text: str) -> None:
    # Whatever the secret shares with the marker, the ellipsis or the spaces that replace
    # control characters, no output shows it.
    scrubber = Scrubber([secret])
    assert secret not in scrubber(text)
    assert secret not in scrubber.excerpt(text * 5, 20)
    assert secret not in scrubber.truncated(text[:20] + "...")
