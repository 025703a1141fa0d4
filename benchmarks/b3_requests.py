"""Benchmark 3: requests to the provider for the tutorial flow, and how they grow with users.

One client per kind serves every user (the tutorial's global client with a per-request
session storage, chosen through a context variable as a Flask session would be). Each user
goes through the whole tutorial: ``signIn``, the browser at the provider, the callback,
``fetchUserInfo``, ``getAccessToken(API)``, ``getOrganizationToken(ORG)``, ``signOut``.
Requests are counted from the provider's log (the browser's approvals are not requests of
the SDK). The time spent inside the SDK's calls is summed per flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from typing import Any

from .harness import (
    API,
    CURRENT,
    KINDS,
    ORG,
    OURS,
    POST_LOGOUT,
    REDIRECT,
    Stopwatch,
    close,
    make_client,
    served,
    storage_for,
    user_name,
)

USER_COUNTS = (1, 10, 100)


async def tutorial_flow(client: Any, srv: Any, user: str, watch: Stopwatch) -> None:
    """The tutorial, end to end, for one user (in the current context's session)."""
    CURRENT.set({})
    url = await watch.measure("signIn", lambda: client.signIn(REDIRECT))
    callback = srv.approve(url, user)  # the browser: not SDK time
    await watch.measure("handleSignInCallback", lambda: client.handleSignInCallback(callback))
    assert client.isAuthenticated()
    info = await watch.measure("fetchUserInfo", client.fetchUserInfo)
    assert info.sub == user
    assert await watch.measure("getAccessToken", lambda: client.getAccessToken(API))
    assert await watch.measure("getOrganizationToken", lambda: client.getOrganizationToken(ORG))
    await watch.measure("signOut", lambda: client.signOut(POST_LOGOUT))


async def _run_kind(kind: str, users: int) -> dict[str, Any]:
    with served() as srv:
        client = make_client(kind, srv.url, storage_for(kind, routed=True))
        first = Stopwatch()
        watch = Stopwatch()
        for n in range(users):
            # A fresh context per user, as each request of a web app has its own.
            await asyncio.create_task(
                tutorial_flow(client, srv, user_name(n), first if n == 0 else watch)
            )
        await close(kind, client)  # ours: waits for the background revocations
        counts = srv.requests_since(0)
    total = sum(counts.values())
    return {
        "users": users,
        "by_endpoint": dict(sorted(counts.items())),
        "total": total,
        "per_user": total / users,
        "discovery": counts.get("discovery", 0),
        "jwks": counts.get("jwks", 0),
        "first_flow_ms": first.total * 1e3,
    }


async def _steady_time(rounds: int, per_round: int) -> dict[str, Any]:
    """SDK time per flow once warm: every kind has its own provider and client, and the kinds
    take turns, ``per_round`` flows at a time, so that background load touches them alike."""
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(served()) for kind in KINDS}
        clients = {
            kind: make_client(kind, servers[kind].url, storage_for(kind, routed=True))
            for kind in KINDS
        }
        warm = Stopwatch()
        for kind in KINDS:
            await asyncio.create_task(tutorial_flow(clients[kind], servers[kind], "user-0", warm))
        samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
        methods: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        for r in range(rounds):
            for kind in KINDS:
                watch = Stopwatch()
                for n in range(per_round):
                    user = user_name(r * per_round + n)
                    await asyncio.create_task(
                        tutorial_flow(clients[kind], servers[kind], user, watch)
                    )
                samples[kind].append(watch.total / per_round)
                for method, seconds in watch.by_method.items():
                    methods[kind][method] = methods[kind].get(method, 0.0) + seconds
        for kind in KINDS:
            await close(kind, clients[kind])
    return {
        kind: {
            "median_ms": statistics.median(values) * 1e3,
            "best_ms": min(values) * 1e3,
            "flows": rounds * per_round,
            "by_method_ms": {
                method: seconds / (rounds * per_round) * 1e3
                for method, seconds in methods[kind].items()
            },
        }
        for kind, values in samples.items()
    }


def run(quick: bool = False) -> dict[str, Any]:
    counts = USER_COUNTS[:2] if quick else USER_COUNTS
    results: dict[str, Any] = {"scaling": {kind: {} for kind in KINDS}}
    for users in counts:
        for kind in KINDS:
            results["scaling"][kind][users] = asyncio.run(_run_kind(kind, users))
    rounds, per_round = (3, 5) if quick else (10, 10)
    steady = asyncio.run(_steady_time(rounds, per_round))
    official = steady["official"]["median_ms"]
    for kind in OURS:
        steady[kind]["ratio_vs_official"] = steady[kind]["median_ms"] / official
    results["steady"] = steady
    return results
