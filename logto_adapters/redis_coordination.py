"""Single flight across processes, on Redis: :class:`RedisCoordinator` (blocking) and
:class:`AsyncRedisCoordinator` (asyncio; ``logto_adapters.aio.RedisCoordinator``).

Pass one to ``Logto(config, coordinator=RedisCoordinator(url))`` in every worker of an app
(gunicorn, uvicorn ``--workers``, several machines): the callers of one grant, in whatever
process, then make one refresh, and the others take its result (:mod:`logto_core.coordination`
says what a coordinator does; :class:`~logto_core.singleflight.FlightTable` is the in-process
table these follow, key for key).

What lives in Redis, for a flight key ``K`` (already a digest: ``grant:<sha-256>``...), under
``prefix`` (``logto:`` by default; the braces make a Redis Cluster keep a flight's keys in
one slot):

``{K}:lead``
    the leader's random token, set with ``SET NX PX``: only that leader can publish. The
    lead lives :data:`LIVENESS` seconds, renewed by its process every
    :data:`RENEW_EVERY` seconds up to the lease the client asked for: a leader whose process
    died (killed mid-refresh) loses the flight within :data:`LIVENESS` seconds, and a waiting
    follower takes it over at once. Why that matters: Logto keeps a consumed refresh token
    usable for 3 s, so the dead leader's request, if it reached Logto just before the process
    died, is presented again within that window (a lead of the client's own lease, 60 s by
    default, would present it long after, and Logto would revoke the grant).
``{K}:done``
    the result kept for later claimers (``Done``), for ``keep`` seconds.
``{K}:ended``
    the key ended (a grant signed out), for :data:`~logto_core.singleflight.ENDED_KEEP`.
``{K}:out:<token>``
    one flight's result for the followers waiting on it, for ``grace`` seconds (a result
    kept 0 s must still reach them).

and the channel ``<prefix>published``, on which each publication names its token: followers
wake at once, and poll at most every :data:`POLL_MAX` seconds in case a message is lost.
Each step that reads and writes several keys is one Lua script (claim: ended, kept result,
lead; publish: check the token, store, release, notify).

Differences from the in-process table: a key ended while its flight ran stays ended when
that flight is taken over (the table forgets it); results and ended keys are bounded by
their TTLs rather than by a count (run the coordinator's Redis with ``maxmemory-policy
noeviction``: an evicted lead would let a second refresh start).

Failures. Every Redis failure is a :class:`~logto_core.errors.CoordinationError`
(``coordination.unavailable``, ``coordination.auth``, ``coordination.tls``,
``coordination.failed``) with a message of its own, the redis-py exception only as its
``__cause__``: a failed claim or wait fails the request before anything is saved (the stored
session is as it was); a failed publication is logged and dropped (the leader still saves
its result; its followers see the lead lapse and try again); a failed end is logged by the
sign-out, which stands. A follower whose leader's process died gets
:class:`~logto_core.errors.LeaderLostError` from :meth:`wait`, and a refresh then claims again.

Connection settings, TLS (``rediss://``) and authentication (``redis://user:password@host``)
come from the URL (redis-py's ``from_url``; its query parameters and the keyword options given
here are passed on: ``ssl_ca_certs=``, ``socket_timeout=``...). Unless told otherwise, a
connection attempt gives up after 1 s and a command after 2 s, with two quick retries, so a
Redis that is down costs a request about a second, not redis-py's default ten retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import ssl
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.connection
import redis.exceptions
import redis.retry
from redis.backoff import ExponentialWithJitterBackoff

from logto_core.errors import CoordinationError, LeaderLostError, LogtoUsageError
from logto_core.singleflight import ENDED_KEEP, Done, Ended, Follow, Lead, Ticket

from ._common import ForkSafe, track_forks

logger = logging.getLogger("logto")

DEFAULT_PREFIX = "logto:"
"""What every key of the coordinator starts with."""

LIVENESS = 1.5
"""Seconds a lead lives unless its process renews it: a leader whose process died is taken
over this long after its last renewal (well inside Logto's 3 s reuse window)."""

RENEW_EVERY = 0.5
"""Seconds between a live leader's renewals (three chances per :data:`LIVENESS`)."""

GRACE = 10.0
"""Seconds a flight's result stays for the followers waiting on it (they read it within
milliseconds of its publication, or at their next poll)."""

POLL_FIRST = 0.1
POLL_MAX = 0.2
"""A follower checks its flight after each notification, and at least this often (backing
off from :data:`POLL_FIRST`): a lost notification, or a leader whose lead lapsed."""

LISTEN_IDLE = 30.0
"""Seconds the notifications' subscription stays open with nobody waiting."""

CONNECT_TIMEOUT = 1.0
COMMAND_TIMEOUT = 2.0
RETRIES = 2
"""redis-py settings used unless the URL or the options say otherwise."""

_SCHEMES = ("redis://", "rediss://", "unix://")

# ---- the scripts ------------------------------------------------------------------------

_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return {'lead'} end
if holder then return {'follow', holder} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'ended'} end
if ARGV[3] == '0' then
  local kept = redis.call('GET', KEYS[2])
  if kept then return {'done', kept} end
end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'lead'}
"""
"""KEYS: lead, done, ended. ARGV: token, lead ms, supersede (1/0). A claim retried after a
lost answer finds its own token and leads."""

_PUBLISH = """
redis.call('SET', KEYS[4], ARGV[2], 'PX', ARGV[4])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('PEXPIRE', KEYS[3], ARGV[5])
  elseif tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  end
end
redis.call('PUBLISH', ARGV[6], ARGV[1])
return 1
"""
"""KEYS: lead, done, ended, out. ARGV: token, result, keep ms (0: not kept), grace ms, ended
ms, channel. A leader whose flight was taken over records nothing for later claimers; its own
followers still get its result (as the in-process table's handles do)."""

_CHECK = """
local out = redis.call('GET', KEYS[2])
if out then return {'result', out} end
if redis.call('GET', KEYS[1]) == ARGV[1] then return {'running'} end
return {'lost'}
"""
"""KEYS: lead, out. ARGV: the leader's token."""

_END = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
"""
"""KEYS: done, ended. ARGV: ended ms."""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
"""KEYS: lead. ARGV: token, lead ms. 0: the lead is no longer this leader's."""


@dataclass(frozen=True, slots=True)
class Flight:
    """A ticket's handle: the flight key and the token of its leader (this caller's, in a
    ``Lead``; the one it waits for, in a ``Follow``). No secret: a random token and a
    digest."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class _Keys:
    lead: str
    done: str
    ended: str

    def out(self, token: str) -> str:
        return self.lead[: -len("lead")] + "out:" + token


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


# ---- settings, errors -------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    url: str
    prefix: str
    liveness: float
    renew_every: float
    grace: float
    options: dict[str, Any]

    @property
    def channel(self) -> str:
        return self.prefix + "published"

    def keys(self, key: str) -> _Keys:
        base = f"{self.prefix}{{{key}}}:"
        return _Keys(base + "lead", base + "done", base + "ended")

    def client_options(self, asyncio_client: bool) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": COMMAND_TIMEOUT,
        }
        if "retry" not in self.options:
            backoff = ExponentialWithJitterBackoff(cap=0.1, base=0.01)
            if asyncio_client:
                options["retry"] = redis.asyncio.retry.Retry(backoff, RETRIES)
            else:
                options["retry"] = redis.retry.Retry(backoff, RETRIES)
        options.update(self.options)
        options["decode_responses"] = True  # results are text
        return options


def _settings(
    url: object, prefix: object, liveness: object, grace: object, **options: Any
) -> _Settings:
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise LogtoUsageError(
            "RedisCoordinator needs a Redis URL: redis://[[user]:password@]host[:port][/db], "
            "rediss://... for TLS, or unix:///path/to/socket",
            code="usage.coordinator",
        )
    if not isinstance(prefix, str) or not prefix:
        raise LogtoUsageError(
            "RedisCoordinator's prefix must be a non-empty string", code="usage.coordinator"
        )
    for name, value in (("liveness", liveness), ("grace", grace)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 3600:
            raise LogtoUsageError(
                f"RedisCoordinator's {name} must be a number of seconds above 0 (and under an "
                "hour)",
                code="usage.coordinator",
            )
    assert isinstance(liveness, (int, float)) and isinstance(grace, (int, float))
    settings = _Settings(
        url, prefix, float(liveness), min(RENEW_EVERY, liveness / 3), float(grace), options
    )
    try:  # the URL is parsed now, so that a bad one fails at start-up, not at a request
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as error:
        raise LogtoUsageError(
            f"RedisCoordinator's URL cannot be read ({type(error).__name__}); the form is "
            "redis://[[user]:password@]host[:port][/db]",
            code="usage.coordinator",
        ) from None
    return settings


def _where(url: str) -> str:
    """The URL's server, without credentials, for messages."""
    try:
        parsed = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError):  # pragma: no cover - checked at construction
        return "Redis"
    if "path" in parsed:
        return f"Redis at {parsed['path']}"
    return f"Redis at {parsed.get('host', 'localhost')}:{parsed.get('port', 6379)}"


def _failure(where: str, error: BaseException) -> CoordinationError:
    """The typed error for a redis-py failure (chained by the caller)."""
    kind = type(error).__name__
    tail = "the request did not complete and the stored session is unchanged"
    if isinstance(
        error, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)
    ) or (
        isinstance(error, redis.exceptions.ResponseError)
        and str(error).startswith(("NOAUTH", "NOPERM", "WRONGPASS"))
    ):
        return CoordinationError(
            f"{where} refused the coordinator's credentials ({kind}); {tail}; check the user "
            "and password in the coordinator's URL (redis://user:password@host)",
            code="coordination.auth",
        )
    if _is_tls(error):
        return CoordinationError(
            f"the TLS connection to {where} failed ({kind}); {tail}; check the server's "
            "certificate, or pass ssl_ca_certs= with the CA that signed it",
            code="coordination.tls",
        )
    if isinstance(
        error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
    ):
        return CoordinationError(
            f"the coordinator could not reach {where} ({kind}); {tail}; check that Redis is "
            "running and the coordinator's URL",
            code="coordination.unavailable",
        )
    return CoordinationError(
        f"{where} failed a coordinator command ({kind}); {tail}; check the server (a "
        "read-only replica, memory full, a Redis older than 6)",
        code="coordination.failed",
    )


def _is_tls(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen)[:200]:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _lost() -> LeaderLostError:
    return LeaderLostError(
        "the concurrent caller this request waited for lost its lead without publishing "
        "(its process stopped); claim the flight again",
        code="coordination.leader_lost",
    )


def _ticket(flight_key: str, token: str, answer: Any) -> Ticket:
    kind = answer[0]
    if kind == "lead":
        return Lead(Flight(flight_key, token))
    if kind == "follow":
        return Follow(Flight(flight_key, str(answer[1])))
    if kind == "ended":
        return Ended()
    return Done(str(answer[1]))


def _flight(handle: object) -> Flight:
    if not isinstance(handle, Flight):
        raise LogtoUsageError(
            "this ticket was not answered by this coordinator", code="usage.coordinator"
        )
    return handle


# ---- what both flavours share: the renewals and the notifications (threads) --------------


class _Leads:
    """The leads this process holds, renewed by a daemon thread until each one's lease is
    over (or it is published): a process that dies stops renewing, and its leads lapse."""

    def __init__(self, settings: _Settings, shared: _Shared) -> None:
        self._settings = settings
        self._shared = shared
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def hold(self, lead_key: str, token: str, lease: float) -> None:
        with self._lock:
            self._held[(lead_key, token)] = time.monotonic() + lease
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="logto-redis-leads", daemon=True
                )
                self._thread.start()

    def release(self, lead_key: str, token: str) -> None:
        with self._lock:
            self._held.pop((lead_key, token), None)

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            self._stop.set()
            self._thread = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._settings.renew_every):
            now = time.monotonic()
            with self._lock:
                if stop.is_set():
                    return
                for held, until in list(self._held.items()):
                    if until <= now:  # its lease is over: it lapses on its own
                        del self._held[held]
                due = list(self._held.items())
                if not due:
                    self._thread = None
                    return
            self._renew(due, now)

    def _renew(self, due: list[tuple[tuple[str, str], float]], now: float) -> None:
        try:
            renew = self._shared.script(_RENEW)
            pipe = self._shared.client().pipeline(transaction=False)
            for (lead_key, token), until in due:
                px = _ms(min(self._settings.liveness, until - now))
                renew(keys=[lead_key], args=[token, px], client=pipe)
            answers = pipe.execute()
        except Exception as error:  # a background thread: never dies noisily
            # Redis out of reach: the leads may lapse; the leaders still finish and save.
            logger.debug("could not renew the coordinator's leads (%s)", type(error).__name__)
            return
        with self._lock:
            for (held, _), answer in zip(due, answers, strict=True):
                if not answer:  # published, or taken over
                    self._held.pop(held, None)


class _Notices:
    """One subscription per coordinator: each publication's token wakes the followers
    waiting on it, in any thread or event loop of the process."""

    def __init__(self, settings: _Settings, client: Callable[[], redis.Redis]) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._waiting: dict[str, set[Callable[[], None]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextlib.contextmanager
    def waiting(self, token: str, wake: Callable[[], None]) -> Iterator[None]:
        with self._lock:
            self._waiting.setdefault(token, set()).add(wake)
            if self._thread is None:
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="logto-redis-notices", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                wakes = self._waiting.get(token)
                if wakes is not None:
                    wakes.discard(wake)
                    if not wakes:
                        del self._waiting[token]

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            self._thread = None

    def _idle(self, since: float) -> bool:
        """Nobody has waited for :data:`LISTEN_IDLE` seconds: the thread ends (under the
        lock, so that a new waiter starts another)."""
        with self._lock:
            if self._waiting or time.monotonic() - since < LISTEN_IDLE:
                return False
            self._thread = None
            return True

    def _run(self, stop: threading.Event) -> None:
        pause = 0.1
        busy = time.monotonic()
        while not stop.is_set():
            try:
                pubsub = self._client().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                try:
                    pubsub.subscribe(self._settings.channel)
                    pause = 0.1
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None and message.get("type") == "message":
                            self._wake(str(message.get("data")))
                        if self._waiting:
                            busy = time.monotonic()
                        elif self._idle(busy):
                            return
                finally:
                    pubsub.close()
            except Exception as error:  # a background thread: never dies noisily
                # The followers poll meanwhile; subscribe again after a pause (or stop: the
                # coordinator was closed while this thread was connecting).
                logger.debug("coordinator notifications interrupted (%s)", type(error).__name__)
                stop.wait(pause)
                pause = min(pause * 2, 2.0)

    def _wake(self, token: str) -> None:
        with self._lock:
            wakes = list(self._waiting.get(token, ()))
        for wake in wakes:
            wake()


class _Shared(ForkSafe):
    """The blocking client, the leads and the notifications of one coordinator."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.where = _where(settings.url)
        self._start()
        track_forks(self)

    def _start(self) -> None:
        self._client: redis.Redis | None = None
        self._client_lock = threading.Lock()
        self._scripts: dict[str, Any] = {}
        self.leads = _Leads(self.settings, self)
        self.notices = _Notices(self.settings, self.client)

    def client(self) -> redis.Redis:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = redis.Redis.from_url(
                        self.settings.url, **self.settings.client_options(False)
                    )
        return self._client

    def script(self, text: str) -> Any:
        """``text`` registered with the blocking client (loaded on first use)."""
        script = self._scripts.get(text)
        if script is None:
            script = self._scripts[text] = self.client().register_script(text)
        return script

    def after_fork_in_child(self) -> None:
        """A forked child holds none of the parent's leads, and has no threads: it starts
        anew (its connections too)."""
        self._start()

    def close(self) -> None:
        self.leads.close()
        self.notices.close()
        if self._client is not None:
            self._client.close()
            self._client = None


def _token() -> str:
    return secrets.token_hex(16)


# ---- the blocking coordinator -----------------------------------------------------------


class RedisCoordinator:
    """Single flight across processes and machines, for the blocking client, on the Redis
    at ``url`` (``redis://``, ``rediss://`` for TLS, ``unix://``; credentials in the URL).

    ``prefix`` starts every key (give apps sharing a Redis their own, or share one: keys are
    digests of the grants); ``liveness``: seconds a lead whose process stopped renewing it
    lives on (:data:`LIVENESS`); ``grace``: seconds a result stays for the followers waiting
    on it (:data:`GRACE`). Other keyword options go to redis-py's ``Redis.from_url``
    (``ssl_ca_certs=``, ``socket_timeout=``, ``max_connections=``...). Make one per process
    (one per ``Logto``); it connects on first use. Implements
    :class:`~logto_core.coordination.Coordinator`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        liveness: float = LIVENESS,
        grace: float = GRACE,
        **options: Any,
    ) -> None:
        self._shared = _Shared(_settings(url, prefix, liveness, grace, **options))

    def _call(self, text: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return self._shared.script(text)(keys=keys, args=args)
        except (redis.exceptions.RedisError, OSError) as error:
            raise _failure(self._shared.where, error) from error

    def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        settings = self._shared.settings
        keys, token = settings.keys(key), _token()
        px = _ms(min(lease, settings.liveness))
        answer = self._call(
            _CLAIM, [keys.lead, keys.done, keys.ended], [token, px, int(bool(supersede))]
        )
        ticket = _ticket(key, token, answer)
        if isinstance(ticket, Lead):
            self._shared.leads.hold(keys.lead, token, lease)
        return ticket

    def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        flight = _flight(lead.handle)
        settings = self._shared.settings
        keys = settings.keys(flight.key)
        self._shared.leads.release(keys.lead, flight.token)
        try:
            self._call(
                _PUBLISH,
                [keys.lead, keys.done, keys.ended, keys.out(flight.token)],
                [
                    flight.token,
                    result,
                    _ms(keep) if keep > 0 else 0,
                    _ms(settings.grace),
                    _ms(ENDED_KEEP),
                    settings.channel,
                ],
            )
        except CoordinationError as error:  # never raises: the leader saves its result
            logger.warning(
                "the coordinator could not publish a result (%s); the caller keeps it, the "
                "callers waiting for it try again",
                error.code,
            )

    def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        flight = _flight(follow.handle)
        keys = self._shared.settings.keys(flight.key)
        deadline = time.monotonic() + timeout
        woken = threading.Event()
        with self._shared.notices.waiting(flight.token, woken.set):
            pause = POLL_FIRST
            while True:
                answer = self._call(_CHECK, [keys.lead, keys.out(flight.token)], [flight.token])
                if answer[0] == "result":
                    return str(answer[1])
                if answer[0] == "lost":
                    raise _lost()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                woken.wait(min(pause, left))
                woken.clear()
                pause = min(pause * 2, POLL_MAX)

    def end(self, key: str) -> None:
        keys = self._shared.settings.keys(key)
        self._call(_END, [keys.done, keys.ended], [_ms(ENDED_KEEP)])

    def close(self) -> None:
        """Stop renewing this process's leads and listening; close the connections."""
        self._shared.close()


# ---- the asyncio coordinator ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LoopClient:
    client: redis.asyncio.Redis
    scripts: dict[str, Any]
    closer: AsyncGenerator[None, None]


async def _close_with_loop(client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
    """Parks at ``yield`` until the loop shuts its async generators down, then closes."""
    try:
        yield
    finally:
        await client.aclose()


class AsyncRedisCoordinator(ForkSafe):
    """:class:`RedisCoordinator` for the asyncio client (``logto_adapters.aio`` exports it as
    ``RedisCoordinator``), on ``redis.asyncio``: the same keys and scripts, so blocking and
    asyncio workers of one app can share a Redis. Connections belong to the loop that opened
    them (Flask's async views make a loop per request): each running loop gets its own
    client, closed when that loop shuts down. Renewals and notifications run in daemon
    threads, for every loop of the process. Implements
    :class:`~logto_core.coordination.AsyncCoordinator`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        liveness: float = LIVENESS,
        grace: float = GRACE,
        **options: Any,
    ) -> None:
        self._shared = _Shared(_settings(url, prefix, liveness, grace, **options))
        self._loops_lock = threading.Lock()
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient]
        self._per_loop = weakref.WeakKeyDictionary()
        self._forked_away: list[object] = []
        track_forks(self)

    def after_fork_in_child(self) -> None:
        """Forget the parent's per-loop clients (never closed here: their sockets are the
        parent's)."""
        self._forked_away.append(self._per_loop)
        self._per_loop = weakref.WeakKeyDictionary()
        self._loops_lock = threading.Lock()

    async def _loop_client(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            entry = self._per_loop.get(loop)
            if entry is not None:
                return entry
            for other in [other for other in list(self._per_loop) if other.is_closed()]:
                self._per_loop.pop(other, None)
            settings = self._shared.settings
            client = redis.asyncio.Redis.from_url(settings.url, **settings.client_options(True))
            entry = _LoopClient(client, {}, _close_with_loop(client))
            self._per_loop[loop] = entry
        await entry.closer.__anext__()
        return entry

    async def _call(self, text: str, keys: list[str], args: list[Any]) -> Any:
        try:
            entry = await self._loop_client()
            script = entry.scripts.get(text)
            if script is None:
                script = entry.scripts[text] = entry.client.register_script(text)
            return await script(keys=keys, args=args)
        except (redis.exceptions.RedisError, OSError) as error:
            raise _failure(self._shared.where, error) from error

    async def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        settings = self._shared.settings
        keys, token = settings.keys(key), _token()
        px = _ms(min(lease, settings.liveness))
        answer = await self._call(
            _CLAIM, [keys.lead, keys.done, keys.ended], [token, px, int(bool(supersede))]
        )
        ticket = _ticket(key, token, answer)
        if isinstance(ticket, Lead):
            self._shared.leads.hold(keys.lead, token, lease)
        return ticket

    async def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        flight = _flight(lead.handle)
        settings = self._shared.settings
        keys = settings.keys(flight.key)
        self._shared.leads.release(keys.lead, flight.token)
        try:
            await self._call(
                _PUBLISH,
                [keys.lead, keys.done, keys.ended, keys.out(flight.token)],
                [
                    flight.token,
                    result,
                    _ms(keep) if keep > 0 else 0,
                    _ms(settings.grace),
                    _ms(ENDED_KEEP),
                    settings.channel,
                ],
            )
        except CoordinationError as error:  # never raises: the leader saves its result
            logger.warning(
                "the coordinator could not publish a result (%s); the caller keeps it, the "
                "callers waiting for it try again",
                error.code,
            )

    async def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        flight = _flight(follow.handle)
        keys = self._shared.settings.keys(flight.key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        woken = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(woken.set)

        with self._shared.notices.waiting(flight.token, wake):
            pause = POLL_FIRST
            while True:
                answer = await self._call(
                    _CHECK, [keys.lead, keys.out(flight.token)], [flight.token]
                )
                if answer[0] == "result":
                    return str(answer[1])
                if answer[0] == "lost":
                    raise _lost()
                left = deadline - loop.time()
                if left <= 0:
                    return None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(pause, left))
                woken.clear()
                pause = min(pause * 2, POLL_MAX)

    async def end(self, key: str) -> None:
        keys = self._shared.settings.keys(key)
        await self._call(_END, [keys.done, keys.ended], [_ms(ENDED_KEEP)])

    async def aclose(self) -> None:
        """Close the running loop's connections; stop renewing and listening."""
        with self._loops_lock:
            entry = self._per_loop.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()
        self._shared.close()


__all__ = [
    "DEFAULT_PREFIX",
    "GRACE",
    "LIVENESS",
    "AsyncRedisCoordinator",
    "Flight",
    "RedisCoordinator",
]
