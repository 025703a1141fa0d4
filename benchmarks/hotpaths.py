"""Profiles of the paths behind each target, run when that target is missed."""

from __future__ import annotations

import asyncio
from typing import Any

from . import b1_pageview, b2_callback, b3_requests
from .harness import CURRENT, SHORT_API, Clock, Stopwatch, close, make_client, served, user_name
from .profiling import profile_async, profile_coroutine, profile_sync, summarise


def page_view(kind: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        client, context = await b1_pageview.setup_for_profile(kind)
        try:
            if kind == "sync":
                return profile_sync(lambda: b1_pageview.page_view(client, kind), 5000)
            return await profile_async(lambda: b1_pageview.page_view(client, kind), 5000)
        finally:
            await close(kind, client)
            context.__exit__(None, None, None)

    return asyncio.run(go())


def callback() -> dict[str, Any]:
    result = b2_callback.run(quick=True)
    world, prepared = result["world"], result["prepared"]
    items = iter(prepared * 3)
    return profile_sync(lambda: world.handle(next(items)), len(prepared) * 3)


def tutorial_flow(kind: str, flows: int = 40) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        with served() as srv:
            client = make_client(kind, srv.url, b3_requests.storage_for(kind, routed=True))
            watch = Stopwatch()
            await asyncio.create_task(b3_requests.tutorial_flow(client, srv, "user-0", watch))
            counter = iter(range(1, flows + 1))

            async def one() -> None:
                user = user_name(next(counter))
                await asyncio.create_task(b3_requests.tutorial_flow(client, srv, user, watch))

            summary = await profile_async(one, flows)
            await close(kind, client)
            return summary

    return asyncio.run(go())


def throughput(kind: str, concurrency: int = 100, flows: int = 300) -> dict[str, Any]:
    import cProfile

    from .b6_throughput import _flow

    async def go() -> dict[str, Any]:
        with served() as srv:
            client = make_client(kind, srv.url, b3_requests.storage_for(kind, routed=True))
            await _flow(client, srv, 0, {})
            limit = asyncio.Semaphore(concurrency)

            async def bounded(n: int) -> None:
                async with limit:
                    await _flow(client, srv, n, {})

            profile = cProfile.Profile()
            profile.enable()
            await asyncio.gather(*(bounded(n) for n in range(flows)))
            profile.disable()
            await close(kind, client)
            return summarise(profile, flows)

    return asyncio.run(go())


def fresh_loop_refresh(calls: int = 20) -> dict[str, Any]:
    """The async client with ``asyncio.run`` per call (Flask's async views)."""

    async def prepare() -> tuple[Any, Any, Any, Clock]:
        context = served()
        srv = context.__enter__()
        clock = Clock()
        client = make_client("aio", srv.url, b3_requests.storage_for("aio"), clock=clock)
        CURRENT.set({})
        url = await client.signIn(b3_requests.REDIRECT)
        await client.handleSignInCallback(srv.approve(url, "user-0"))
        return client, context, srv, clock

    client, context, _srv, clock = asyncio.run(prepare())

    async def one() -> Any:
        clock.advance(11.0)
        return await client.getAccessToken(SHORT_API)

    try:
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(calls):
            asyncio.run(one())
        profile.disable()
        return summarise(profile, calls)
    finally:
        context.__exit__(None, None, None)


__all__ = [
    "callback",
    "fresh_loop_refresh",
    "page_view",
    "profile_coroutine",
    "throughput",
    "tutorial_flow",
]
