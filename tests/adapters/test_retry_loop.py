"""The SDK's one retry loop (:func:`logto_core.exchange.exchange`, which every flow's
exchange goes through, over single attempts of either transport) and the SDK's one
``Retry-After`` reader."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import responses
from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.exchange import exchange
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.sleep import Sleep

from . import peers
from .senders import TRANSPORTS, Sender

DISCOVERY = HttpRequest.get(
    "https://t.example/oidc/.well-known/openid-configuration", purpose="discovery"
)
TOKEN = HttpRequest.post_form("https://t.example/oidc/token", [("a", "b")], purpose="token")
RUNTIME = Runtime(clock=lambda: 1000.0, entropy=lambda n: b"\x80" + b"\x00" * (n - 1))
RETRY = policy.RetryPolicy(max_retries=2, base_delay=0.1, max_delay=1.0, max_retry_after=3.0)


def play(
    request: HttpRequest,
    outcomes: list[HttpResponse | TransportError],
    remaining: float = 10.0,
    retry: policy.RetryPolicy = RETRY,
) -> tuple[list[float], HttpResponse | TransportError]:
    """Run the loop as a driver does (on a clock that stands still, so ``remaining`` is the
    time left at every decision); the wait before each attempt (0 before the first) and what
    it ended with."""
    steps = exchange(request, policy.ExchangePolicy(retry, remaining), runtime=RUNTIME)
    waits: list[float] = [0.0]
    pending = iter(outcomes)
    try:
        effect = next(steps)
        while True:
            if isinstance(effect, Sleep):
                waits.append(effect.seconds(RUNTIME.now()))
                effect = steps.send(None)
                continue
            assert effect.timeout == remaining and effect.attempt == len(waits) - 1
            outcome = next(pending)
            if isinstance(outcome, TransportError):
                effect = steps.throw(outcome)
            else:
                effect = steps.send(outcome)
    except StopIteration as stop:
        assert next(pending, None) is None  # every outcome was asked for
        return waits, stop.value
    except TransportError as error:
        assert next(pending, None) is None
        return waits, error


def test_retries_then_succeeds() -> None:
    refused = policy.connection_failed(DISCOVERY, "refused")
    waits, result = play(DISCOVERY, [HttpResponse(503), refused, HttpResponse(200)])
    assert waits == [0.0, pytest.approx(0.05, abs=1e-3), pytest.approx(0.1, abs=1e-3)]
    assert isinstance(result, HttpResponse) and result.status == 200


def test_gives_up_with_the_last_outcome() -> None:
    waits, result = play(DISCOVERY, [HttpResponse(503, {"retry-after": "2"})] * 3)
    assert waits == [0.0, 2.0, 2.0]
    assert isinstance(result, TransportError)
    assert (result.code, result.status, result.retry_after) == (policy.STATUS, 503, 2.0)
    refused = policy.connection_failed(DISCOVERY, "refused")
    waits, result = play(DISCOVERY, [refused] * 3)
    assert len(waits) == 3 and result is refused


def test_never_retries_a_token_request_nor_past_the_deadline() -> None:
    waits, result = play(TOKEN, [policy.connection_failed(TOKEN, "reset")])
    assert waits == [0.0] and isinstance(result, TransportError)
    waits, result = play(TOKEN, [HttpResponse(503)])
    assert waits == [0.0] and isinstance(result, HttpResponse)  # the core reads the 503
    waits, result = play(DISCOVERY, [HttpResponse(503, {"retry-after": "2"})], remaining=1.5)
    assert waits == [0.0] and isinstance(result, TransportError)


def test_redirect_is_refused_even_by_a_bare_exchange() -> None:
    _, result = play(TOKEN, [HttpResponse(302, {"location": "https://elsewhere"})])
    assert isinstance(result, TransportError) and result.code == policy.REDIRECT
    bare = exchange(TOKEN, runtime=RUNTIME)  # policy.DIRECT: once, no deadline
    first = next(bare)
    assert first == TOKEN and first.timeout is None and first.connect_timeout is None
    with pytest.raises(TransportError) as caught:
        bare.send(HttpResponse(307, {"location": "https://elsewhere"}))
    assert caught.value.code == policy.REDIRECT
    bare = exchange(DISCOVERY, runtime=RUNTIME)
    next(bare)
    with pytest.raises(TransportError):  # no retry without a policy allowing one
        bare.throw(policy.connection_failed(DISCOVERY, "refused"))


@pytest.mark.parametrize(
    ("value", "now", "seconds"),
    [
        ("0", None, 0.0),
        (" 7 ", None, 7.0),
        ("2.5", 0.0, 2.5),
        ("86399", None, 86399.0),
        ("86400", None, None),  # a day or more is not believed
        ("-1", None, None),
        ("+5", None, None),
        ("1e3", None, None),
        ("1_0", None, None),
        ("nan", None, None),
        ("inf", None, None),
        ("\u00b2", None, None),  # SUPERSCRIPT TWO: isdigit() is true, int() raises
        ("\u0665", None, None),  # ARABIC-INDIC DIGIT FIVE: int() and float() read 5
        ("9" * 5000, None, None),  # int() refuses more than 4300 digits
        ("Thu, 01 Jan 1970 00:16:41 GMT", 1000.0, 1.0),
        ("Thu, 01 Jan 1970 00:16:41 GMT", None, None),  # dates need a clock
        ("Thu, 01 Jan 1970 00:00:00 GMT", 5000.0, 0.0),
        ("Thu, 01 Jan 1970 00:00:00 -0000", 0.0, None),  # no zone
        ("Fri, 01 Jan 9999 00:00:00 GMT", 0.0, None),
        ("Fri, 01 Jan 99999 00:00:00 GMT", 0.0, None),
        ("soon", 0.0, None),
    ],
)
def test_retry_after_values(value: str, now: float | None, seconds: float | None) -> None:
    assert policy.parse_retry_after(value, now) == seconds


@settings(max_examples=300)
@given(
    value=st.one_of(st.text(max_size=80), st.from_regex(r"\A\s*[0-9.]{1,14}\s*\Z")),
    now=st.one_of(st.none(), st.floats(0, 4e9)),
)
def test_retry_after_never_raises_and_is_bounded(value: str, now: float | None) -> None:
    seconds = policy.parse_retry_after(value, now)
    assert seconds is None or 0.0 <= seconds < policy.MAX_RETRY_AFTER
    # The core's reader (no clock) is the same parser.
    assert responses.parse_retry_after(value) == policy.parse_retry_after(value, None)


@pytest.fixture(params=TRANSPORTS)
def sender(request: pytest.FixtureRequest) -> Iterator[Sender]:
    made = Sender(str(request.param), timeout=5)
    yield made
    made.close()


def test_unreadable_retry_after_from_the_network(sender: Sender) -> None:
    """A 503 whose Retry-After is a superscript digit made the transports raise a bare
    ValueError (``str.isdigit`` accepts it, ``int`` does not)."""
    answer = peers.reply("503 Service Unavailable", b"{}", "retry-after: \u00b2")
    with peers.serve() as peer:
        peer.on_request += [peers.Reply(answer)] * 3
        with pytest.raises(TransportError) as caught:
            sender.send(HttpRequest.get(peer.url + "/oidc/jwks", purpose="jwks"))
        assert (caught.value.status, caught.value.retry_after) == (503, None)
        assert len(peer.requests) == 3
