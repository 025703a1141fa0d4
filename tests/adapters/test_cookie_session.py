"""The encrypted cookie session: every cookie under the browser's 4 KB, a session too big for
one cookie split and read back, cached access tokens dropped before the grant is, a session
that cannot fit refused before anything is written, tampering read as no session, keys
rotated; and a signed-in user carried across requests by cookies alone."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_adapters import aio, sync
from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher, SetCookie
from logto_adapters.testing import ServedProvider
from logto_core.errors import LogtoUsageError, SessionTooLargeError, StorageError
from logto_core.log import LOGGER_NAME
from logto_core.runtime import Runtime
from logto_core.session import StorageKey, decode_session

from .conftest import API, ORG, REDIRECT, USER, Clock, make_config

KEY = Fernet.generate_key()
OLD_KEY = Fernet.generate_key()
ORGS = [ORG, "org-2", "org-3", "org-4"]


def join_organizations(served: ServedProvider) -> None:
    for org in ORGS[1:]:
        served.provider.add_organization(org, org)
        served.provider.add_member(org, USER, roles=["member"], scopes=["read:docs"])


def jar_after(jar: dict[str, str], cookies: list[SetCookie]) -> dict[str, str]:
    """What the browser keeps: a cookie over the limit is dropped, as browsers do."""
    kept = dict(jar)
    for cookie in cookies:
        assert len(cookie.header()) <= COOKIE_LIMIT, "a browser would drop this cookie"
        if cookie.max_age == 0:
            kept.pop(cookie.name, None)
        else:
            kept[cookie.name] = cookie.value
    return kept


def test_a_signed_in_user_is_carried_by_cookies_alone(served: ServedProvider, clock: Clock) -> None:
    join_organizations(served)
    cipher = CookieCipher(KEY, secure=False)
    logto = sync.Logto(make_config(served.url), runtime=Runtime(clock=clock))
    jar: dict[str, str] = {}

    def request(call: Any) -> Any:
        nonlocal jar
        storage = cipher.session(jar)
        result = call(logto.session(storage))
        jar = jar_after(jar, storage.set_cookies())
        return result

    url = request(lambda s: s.signIn(REDIRECT))
    callback = served.provider.approve(url, USER)
    request(lambda s: s.handleSignInCallback(callback))
    assert request(lambda s: s.getIdTokenClaims().sub) == USER
    api = request(lambda s: s.getAccessToken(API))
    orgs = [request(lambda s, o=o: s.getOrganizationToken(o)) for o in ORGS]
    assert len([n for n in jar if n.startswith("logto_session.")]) == 2  # split, not dropped
    assert request(lambda s: s.getAccessToken(API)) == api  # read back from two cookies
    assert [request(lambda s, o=o: s.getOrganizationToken(o)) for o in ORGS] == orgs
    refreshes = sum(1 for e in served.provider.log if e.grant_type == "refresh_token")
    assert refreshes == 1 + len(ORGS)
    request(lambda s: s.signOut())
    assert not request(lambda s: s.isAuthenticated())
    assert not jar  # every chunk deleted: nothing left in the browser
    logto.close()


def test_the_asyncio_client_uses_it_the_same(served: ServedProvider, clock: Clock) -> None:
    cipher = CookieCipher([KEY])
    logto = aio.Logto(make_config(served.url), runtime=Runtime(clock=clock))

    async def main() -> None:
        jar: dict[str, str] = {}
        storage = cipher.session(jar)
        url = await logto.session(storage).signIn(REDIRECT)
        jar = jar_after(jar, storage.set_cookies())
        storage = cipher.session(jar)
        await logto.session(storage).handleSignInCallback(served.provider.approve(url, USER))
        jar = jar_after(jar, storage.set_cookies())
        assert logto.session(cipher.session(jar)).isAuthenticated()
        await logto.aclose()

    asyncio.run(main())


def test_without_room_the_access_tokens_go_first(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    join_organizations(served)
    cipher = CookieCipher(KEY, max_cookies=1)
    logto = sync.Logto(make_config(served.url), runtime=Runtime(clock=clock))
    storage = cipher.session({})
    session = logto.session(storage)
    session.handleSignInCallback(served.provider.approve(session.signIn(REDIRECT), USER))
    session.getAccessToken(API)
    for org in ORGS:
        session.getOrganizationToken(org)
    jar = jar_after({}, storage.set_cookies())
    stored = decode_session(cipher.read(jar)[StorageKey.SESSION])
    assert stored.refresh_token == session.getRefreshToken()  # the grant is kept
    assert stored.id_token is not None and not stored.access_tokens
    assert any("access tokens were dropped" in r.getMessage() for r in caplog.records)
    later = logto.session(cipher.session(jar))
    assert later.getAccessToken(API) is not None  # refreshed again, still signed in
    logto.close()


def test_a_session_that_cannot_fit_is_refused_before_any_write(
    served: ServedProvider, clock: Clock
) -> None:
    cipher = CookieCipher(KEY, max_cookies=1)
    storage = cipher.session({})
    storage.set("small", "x")
    before = storage.set_cookies()
    with pytest.raises(SessionTooLargeError) as caught:
        storage.set("huge", "y" * 5000)
    assert caught.value.code == "storage.cookie_too_large"
    assert "server" in caught.value.message
    assert storage.set_cookies() == before and storage.get("huge") is None

    # Through a client: a StorageError whose cause says why.
    served.provider.add_user("long", name="n" * 4000)
    logto = sync.Logto(make_config(served.url, scopes=["profile"]), runtime=Runtime(clock=clock))
    session = logto.session(cipher.session({}))
    url = session.signIn(REDIRECT)
    with pytest.raises(StorageError) as failed:
        session.handleSignInCallback(served.provider.approve(url, "long"))
    assert isinstance(failed.value.__cause__, SessionTooLargeError)
    logto.close()


def test_tampered_foreign_or_old_cookies_read_as_no_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cipher = CookieCipher(KEY)
    storage = cipher.session({})
    storage.set("k", "v")
    jar = jar_after({}, storage.set_cookies())
    assert cipher.read(jar) == {"k": "v"}
    tampered = {name: value[:-3] + "AAA" for name, value in jar.items()}
    assert cipher.read(tampered) == {}
    assert CookieCipher(OLD_KEY).read(jar) == {}
    assert CookieCipher(KEY, max_age=-1).read(jar) == {}  # older than its maximum age
    assert cipher.read({"logto_session.0": "not base64 !"}) == {}
    assert any("could not be read" in r.getMessage() for r in caplog.records)


def test_keys_rotate_newest_first() -> None:
    old = CookieCipher(OLD_KEY)
    storage = old.session({})
    storage.set("k", "v")
    jar = jar_after({}, storage.set_cookies())
    rotated = CookieCipher([KEY, OLD_KEY])
    assert rotated.read(jar) == {"k": "v"}
    rewritten = rotated.session(jar)
    rewritten.set("k", "w")
    jar = jar_after(jar, rewritten.set_cookies())
    assert CookieCipher(KEY).read(jar) == {"k": "w"}  # written with the newest key
    assert old.read(jar) == {}


values = st.dictionaries(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.text(st.characters(codec="utf-8"), max_size=3000),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(values, st.integers(1, 3))
def test_every_cookie_fits_and_reads_back(data: dict[str, str], max_cookies: int) -> None:
    cipher = CookieCipher(KEY, max_cookies=max_cookies)
    try:
        cookies = cipher.cookies_for(data)
    except SessionTooLargeError:
        return
    jar = jar_after({}, cookies)
    assert cipher.read(jar) == data
    assert len(cookies) == max_cookies  # every chunk set or deleted, none left stale


def test_the_header_and_the_settings() -> None:
    cookie = CookieCipher(KEY, domain="example.com").cookies_for({"k": "v"})[0]
    header = cookie.header()
    for part in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Domain=example.com"):
        assert part in header
    assert cookie.value not in repr(cookie) and str(KEY) not in repr(CookieCipher(KEY))
    deleted = CookieCipher(KEY).cookies_for({})
    assert all(c.max_age == 0 and c.value == "" for c in deleted)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"keys": []}, "usage.cookie_key"),
        ({"keys": "not-a-fernet-key"}, "usage.cookie_key"),
        ({"keys": KEY, "name": "bad name;"}, "usage.cookie_name"),
        ({"keys": KEY, "max_cookies": 0}, "usage.cookie_count"),
        ({"keys": KEY, "same_site": "None", "secure": False}, "usage.cookie_same_site"),
        ({"keys": KEY, "same_site": "lax"}, "usage.cookie_same_site"),
    ],
)
def test_usage_mistakes(options: dict[str, Any], code: str) -> None:
    with pytest.raises(LogtoUsageError) as caught:
        CookieCipher(**options)
    assert caught.value.code == code
