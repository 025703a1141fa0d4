"""Write docs/benchmarks.md and its chart from one run's results."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from .harness import KINDS, LABEL

COMMAND = "python -m benchmarks"
PACKAGES = (
    "logto-sansio",
    "logto",
    "requests",
    "httpx",
    "aiohttp",
    "PyJWT",
    "joserfc",
    "cryptography",
    "pydantic",
)

# Measured while building the benchmarks, before and after the changes they led to (same
# machine, same method); kept here because a run can only measure the code as it is.
HISTORY: list[list[str]] = [
    [
        "`logto_core/session.py`: decoded sessions memoised by their raw storage strings "
        "(`_decode_cached`, 1,024 entries); `SessionState.load` reads the four keys without "
        "an intermediate dict",
        "page view, sync client",
        "35.6 µs (1.4x cheaper than official)",
        "4.8-6.6 µs (7.6-9.3x)",
    ],
    ["same", "page view, async client", "42.8 µs (1.1x)", "10.8-15.0 µs (3.4-4.1x)"],
    [
        "`logto_core/client.py`: `LogtoCore.cached_access_token` builds the cache key "
        "directly when no scopes are given",
        "`cached_access_token` per call",
        "1.15 µs",
        "0.73 µs",
    ],
    [
        "`logto_core/jwt.py`: one module-level `JSONDecoder` instead of "
        "`json.loads(..., hooks)` for every segment",
        "`decode_unverified` per ID token",
        "12.4 µs",
        "10.1 µs",
    ],
    [
        "both clients: `getAccessToken`/`getOrganizationToken` answer a fresh cached token "
        "before starting an operation; the async client reads a synchronous storage in one "
        "pass with a type test before `inspect.isawaitable`; `TokenKey.of` without a sort",
        "page view, sync / async client",
        "10.9x / 8.7x cheaper than official",
        "15.4-15.9x / 10.6-11.0x",
    ],
    [
        "`transport_requests.py`: proxy and CA settings read from the environment once per "
        "origin (requests reads them on every request)",
        "one loopback GET, our transport vs plain `requests.Session`",
        "661-670 µs (plain requests)",
        "565-574 µs",
    ],
    [
        "`transport_httpx.py`: one TLS context per transport instead of one per event loop; "
        "`sniffio` installed (httpcore retried its import on every request)",
        "async throughput, concurrency 1 / 10 / 100",
        "1x",
        "1.19x / 1.14x / 1.30x",
    ],
    [
        "sign-out revokes the refresh token in the background (reused threads, one "
        "background loop) instead of inside `signOut`",
        "full tutorial flow, SDK time vs official, sync / async",
        "1.26x / 1.30x (1.20x / 1.54x with a thread and a loop per revocation)",
        "1.09-1.10x / 1.30-1.32x",
    ],
    [
        "hardening: sign-out revokes inline again by default (bounded by "
        "`revocation_timeout`: a revocation in the background is lost when a script exits); "
        "refreshes and code exchanges run shielded (a worker thread / a task); one stored "
        "value; scrubbed errors; strict JSON",
        "full tutorial flow, SDK time vs official, sync / async",
        "1.09-1.10x / 1.30-1.32x",
        "1.39x / 1.53x (without `signOut`: 1.22x / 1.29x)",
    ],
    [
        "`token_endpoint.py`: the token-text check (visible ASCII) with `isascii`/"
        "`isprintable` instead of a Python loop over the ID token",
        "callback CPU vs raw ES384 verification",
        "1.55-1.57x",
        "1.45x",
    ],
]


def chart_path(report: Path) -> Path:
    return report.with_suffix(".png")


def _machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory = f"{int(first.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (absent)")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
        ("memory", memory),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("packages", ", ".join(versions)),
        ("load average at the end", " / ".join(f"{x:.2f}" for x in load)),
    ]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def _targets(checks: list[dict[str, Any]]) -> str:
    rows = [[c["name"], c["goal"], c["value"], "met" if c["met"] else "**missed**"] for c in checks]
    return _table(["target", "goal", "measured", ""], rows)


def _pageview(page: dict[str, Any]) -> str:
    official = page["official"]["best_us"]
    rows = [
        [
            LABEL[kind],
            _f(page[kind]["best_us"], 2),
            _f(page[kind]["median_us"], 2),
            page[kind]["provider_requests"],
            f"{official / page[kind]['best_us']:.1f}x" if kind != "official" else "1x",
        ]
        for kind in KINDS
    ]
    return _table(
        ["client", "best µs / view", "median µs / view", "provider requests", "official ÷ this"],
        rows,
    )


def _callback(cb: dict[str, Any]) -> str:
    rows = [
        [
            "handle the callback (core: URL check, code exchange, token response, ID token, "
            "storage writes)",
            _f(cb["callback_us"]),
            f"{cb['callback_over_floor']:.2f}x",
        ],
        [
            "`verify_id_token` alone",
            _f(cb["verify_id_token_us"]),
            f"{cb['verify_over_floor']:.2f}x",
        ],
        ["floor: `cryptography` ES384 verify of the same token", _f(cb["floor_us"]), "1x"],
    ]
    return _table(["work", "CPU µs per callback", "÷ floor"], rows)


def _requests(req: dict[str, Any]) -> str:
    scaling = req["scaling"]
    endpoints = sorted({e for kind in KINDS for e in scaling[kind][1]["by_endpoint"]})
    one = _table(
        ["endpoint", *[LABEL[k] for k in KINDS]],
        [[e, *[scaling[k][1]["by_endpoint"].get(e, 0) for k in KINDS]] for e in endpoints]
        + [["**total**", *[f"**{scaling[k][1]['total']}**" for k in KINDS]]],
    )
    users = sorted(scaling["sync"])
    grow = _table(
        ["users", *[f"{LABEL[k]}: total / per user / discovery / JWKS" for k in KINDS]],
        [
            [
                u,
                *[
                    f"{scaling[k][u]['total']} / {scaling[k][u]['per_user']:.2f} / "
                    f"{scaling[k][u]['discovery']} / {scaling[k][u]['jwks']}"
                    for k in KINDS
                ],
            ]
            for u in users
        ],
    )
    steady = req["steady"]
    methods = list(steady["official"]["by_method_ms"])
    for kind in KINDS:
        methods += [m for m in steady[kind]["by_method_ms"] if m not in methods]
    time_table = _table(
        ["", *[LABEL[k] for k in KINDS]],
        [
            [
                "**SDK time per flow (median of rounds), ms**",
                *[f"**{_f(steady[k]['median_ms'], 2)}**" for k in KINDS],
            ],
            [
                "without `signOut` (ours revokes the refresh token inside it), ms",
                *[
                    _f(steady[k]["median_ms"] - steady[k]["by_method_ms"].get("signOut", 0.0), 2)
                    for k in KINDS
                ],
            ],
            [
                "ratio to official",
                *[f"{steady[k].get('ratio_vs_official', 1.0):.2f}x" for k in KINDS],
            ],
            [
                "first flow of a fresh client (cold), ms",
                *[_f(scaling[k][max(users)]["first_flow_ms"], 1) for k in KINDS],
            ],
        ]
        + [
            [f"`{m}` ms", *[_f(steady[k]["by_method_ms"].get(m, 0.0), 2) for k in KINDS]]
            for m in methods
        ],
    )
    return (
        "Requests for one user's full tutorial flow:\n\n"
        + one
        + "\n\nGrowth with the number of users (one client, one process):\n\n"
        + grow
        + f"\n\nTime inside the SDK's calls, warm clients, {steady['sync']['flows']} flows each "
        "(kinds taking turns in rounds of 10):\n\n" + time_table
    )


def _connections(conns: dict[str, Any]) -> str:
    labels = {
        "sync": LABEL["sync"],
        "aio": LABEL["aio"] + ", one event loop",
        "aio-fresh-loop": LABEL["aio"] + ", `asyncio.run` per call",
        "official": LABEL["official"],
    }
    rows = [
        [
            labels[case],
            v["refresh_requests"],
            v["other_requests"],
            v["connections"],
            v["connections_with_sign_in"],
            _f(v["ms_per_refresh"], 2),
        ]
        for case, v in conns.items()
    ]
    return _table(
        [
            "client",
            "refresh requests",
            "other requests",
            "TCP connections (refreshes)",
            "TCP connections (incl. sign-in)",
            "ms per refresh",
        ],
        rows,
    )


def _concurrent(conc: dict[str, Any]) -> str:
    rows = []
    for case, sizes in conc.items():
        for n, v in sizes.items():
            rows.append(
                [
                    LABEL[case],
                    n,
                    v["refresh_requests"],
                    v["errors"],
                    v["distinct_tokens"],
                    _f(v["wall_ms"]),
                    _f(v["p50_ms"], 2),
                    _f(v["p99_ms"], 2),
                ]
            )
    return _table(
        [
            "client",
            "callers N",
            "refresh requests",
            "errors",
            "distinct tokens",
            "wall ms",
            "p50 ms",
            "p99 ms",
        ],
        rows,
    )


def _throughput(tp: dict[str, Any]) -> str:
    levels = sorted(tp["official"])
    rows = [
        [
            level,
            _f(tp["aio"][level]["flows_per_s"], 0),
            _f(tp["official"][level]["flows_per_s"], 0),
            f"{tp['aio'][level]['ratio_vs_official']:.2f}x",
        ]
        for level in levels
    ]
    return _table(
        [
            "concurrency",
            f"{LABEL['aio']} flows/s",
            f"{LABEL['official']} flows/s",
            "ours ÷ official",
        ],
        rows,
    )


def _memory(memory: dict[str, Any]) -> str:
    rows = [
        [
            LABEL[kind],
            v["after_callback_bytes"],
            v["with_api_and_org_tokens_bytes"],
            _f(v["stored_bytes_per_session"], 0),
            _f(v["burst_growth_bytes_per_session"], 0),
            _f(v["heap_growth_bytes_per_session"], 0),
            _f(v["heap_growth_mib_per_10k"], 1),
            _f(v["bounded_caches_bytes"] / 2**20, 2),
        ]
        for kind, v in memory.items()
    ]
    sessions = next(iter(memory.values()))["sessions"]
    return (
        _table(
            [
                "client",
                "storage after callback, B",
                "with API + org tokens, B",
                "storage in the heap test, B",
                "heap per session right after sign-in, B",
                "heap per session, steady, B",
                "steady heap per 10,000 sessions, MiB",
                "of which bounded caches, MiB",
            ],
            rows,
        )
        + f"\n\nHeap growth measured with `tracemalloc` over {sessions:,} sessions, each signed "
        "in and holding one API token, every storage kept alive (the provider runs in another "
        "process, so only the client side is counted). *Right after* includes each refresh "
        "result our clients keep for 10 s for concurrent callers (at most 1,024); *steady* is "
        "measured once that grace period is over, and is scaled to 10,000 sessions. The last "
        "column is what our core's bounded memo caches (decoded sessions, ID-token claims; "
        "1,024 and 4,096 entries) held at the end: a fixed cost once they are full, so the "
        "per-10,000 figure overstates ours by up to that amount."
    )


def _profiles(profiles: dict[str, Any]) -> str:
    if not profiles:
        return "Every target was met: nothing to profile.\n"
    parts = []
    for key, p in profiles.items():
        own = _table(
            ["function (own time)", "µs per call", "share"],
            [[f"`{e['where']}`", _f(e["own_us"], 2), f"{e['share']:.0%}"] for e in p["own"]],
        )
        cum = _table(
            ["project function (cumulative)", "µs per call", "share"],
            [[f"`{e['where']}`", _f(e["cum_us"], 2), f"{e['share']:.0%}"] for e in p["cumulative"]],
        )
        parts.append(
            f"### {p['title']} (`{key}`)\n\ncProfile over {p['calls']} calls "
            f"({_f(p['total_us_per_call'], 1)} µs per call under the profiler, which inflates "
            f"Python code more than C code).\n\n{own}\n\n{cum}\n"
        )
    return "\n".join(parts)


def _chart(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"sync": "#2b7bba", "aio": "#52a852", "official": "#d9534f", "floor": "#999999"}
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    page = results["pageview"]
    ax = axes[0][0]
    ax.bar(
        [LABEL[k] for k in KINDS],
        [page[k]["best_us"] for k in KINDS],
        color=[colours[k] for k in KINDS],
    )
    ax.set_title("1. signed-in page view (µs, lower is better)")
    ax.tick_params(axis="x", labelrotation=12, labelsize=8)

    cb = results["callback"]
    ax = axes[0][1]
    ax.bar(
        ["callback (core)", "verify_id_token", "floor (cryptography)"],
        [cb["callback_us"], cb["verify_id_token_us"], cb["floor_us"]],
        color=[colours["sync"], colours["aio"], colours["floor"]],
    )
    ax.axhline(
        cb["floor_us"] * 1.5, color="black", linestyle="--", linewidth=1, label="target: 1.5x floor"
    )
    ax.legend(fontsize=8)
    ax.set_title("2. callback CPU (µs per callback)")
    ax.tick_params(axis="x", labelsize=8)

    scaling = results["requests"]["scaling"]
    ax = axes[0][2]
    for kind in KINDS:
        users = sorted(scaling[kind])
        ax.plot(
            users,
            [scaling[kind][u]["total"] for u in users],
            marker="o",
            color=colours[kind],
            label=LABEL[kind],
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users (full tutorial flow each)")
    ax.set_title("3. provider requests")
    ax.legend(fontsize=8)

    conns = results["connections"]
    ax = axes[1][0]
    names = list(conns)
    ax.bar(
        names,
        [conns[c]["connections_with_sign_in"] for c in names],
        color=[colours.get(c.split("-")[0], colours["aio"]) for c in names],
    )
    ax.set_yscale("log")
    ax.set_title("4. TCP connections: sign-in + 100 refreshes")
    ax.tick_params(axis="x", labelsize=8)

    conc = results["concurrent"]
    ax = axes[1][1]
    for kind in conc:
        sizes = sorted(conc[kind])
        ax.plot(
            sizes,
            [conc[kind][n]["refresh_requests"] for n in sizes],
            marker="o",
            color=colours[kind],
            label=LABEL[kind],
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent getAccessToken callers")
    ax.set_title("5. refresh requests for one expired token")
    ax.legend(fontsize=8)

    tp = results["throughput"]["throughput"]
    ax = axes[1][2]
    for kind in ("aio", "official"):
        levels = sorted(tp[kind])
        ax.plot(
            levels,
            [tp[kind][c]["flows_per_s"] for c in levels],
            marker="o",
            color=colours[kind],
            label=LABEL[kind],
        )
    ax.set_xscale("log")
    ax.set_xlabel("concurrency")
    ax.set_title("6. sign-in flows per second")
    ax.legend(fontsize=8)

    fig.suptitle("logto-sansio vs the official logto SDK (loopback test provider)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(
    path: Path,
    results: dict[str, Any],
    checks: list[dict[str, Any]],
    profiles: dict[str, Any],
    *,
    elapsed: float,
    quick: bool,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chart = chart_path(path)
    _chart(chart, results)
    machine = _table(["", ""], [[k, v] for k, v in _machine()])
    command = COMMAND + (" --quick" if quick else "")
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# Benchmarks: logto-sansio vs the official `logto` SDK

Generated by `{command}` (wired as `make bench`) on {when}, in {elapsed:.0f} s. Every number
below comes from that one run; run the command again to regenerate this file and
[the chart]({chart.name}).{" **Quick mode: small sizes, indicative only.**" if quick else ""}

![benchmark chart]({chart.name})

## Targets

{_targets(checks)}

## How it is measured

* **Clients**: ours `logto_adapters.sync.LogtoClient` (requests) and
  `logto_adapters.aio.LogtoClient` (httpx), and PyPI's `logto` (the official SDK: async,
  built on **aiohttp**, not httpx, with PyJWT for the ID token). All three are configured alike
  (confidential app, scopes `email read organizations`, two API resources) and used through
  their public, tutorial API only.
* **Environment**: one venv, `.venv-bench`, holds the project and the official SDK (its
  dependencies, `aiohttp`, `PyJWT` and `pydantic` 2, coexist with ours: `pip check` is clean),
  so both run in the same interpreter; the command builds the venv on first use.
* **Provider**: `logto_core.testing.TestProvider` served by
  `logto_adapters.testing.serve_provider` on 127.0.0.1, **in a child process** so that its
  CPU work (signing ES384 tokens) never competes with the client for the interpreter lock.
  Two server settings make it behave like a production server for every client alike:
  `TCP_NODELAY` on accepted sockets (otherwise the stdlib handler's two writes per response
  cost ~40 ms on a *reused* connection, through Nagle's algorithm and delayed ACKs, which
  would penalise exactly the clients that keep connections alive) and a listen backlog of
  1,024 (instead of 5). Requests are counted from the provider's log; TCP connections by the
  server's accept loop. The browser's part of a sign-in (`TestProvider.approve`) is not an SDK
  request and is not counted or timed.
* **Storage**: the tutorial's `Storage` over a dict. Page views use one dict per client;
  multi-user runs use one client with a per-request dict chosen through a context variable,
  as a Flask session is.
* **CPU micro-benchmarks** (1, 2) report the best of several runs; benchmark 2 counts the
  thread's CPU time and interleaves the variants, so that other processes on the machine
  disturb the comparison as little as possible. Benchmark 2 drives `logto_core` directly with
  an in-memory provider (no network): prepared callbacks are replayed through
  `flows.handle_sign_in_callback` (with one `Context`) and the stored value (`SessionState.writes`).
* **Expired tokens** (4, 5): every client asks for a resource whose tokens live one second, so
  each call must refresh. Our clients' clock is moved forward 11 s between calls or waves:
  a refresh result is shared with callers holding the same refresh token for 10 s.

## 1. Signed-in page view

`isAuthenticated()` + `getIdTokenClaims()` + `getAccessToken(API)` with the token cached,
after a real sign-in over loopback.

{_pageview(results["pageview"])}

## 2. Handling the sign-in callback

{_callback(results["callback"])}

## 3. Requests for the tutorial flow

`signIn`, callback, `fetchUserInfo`, `getAccessToken(API)`, `getOrganizationToken(ORG)`,
`signOut`. Ours revokes the refresh token at sign-out (one request the official SDK does not
make: it leaves the grant alive at the provider); by default `signOut` waits for it (at most
`revocation_timeout`), so it is inside the timed `signOut` call: the safe default, since a
revocation left to the background is lost when a script exits right after signing out.

{_requests(results["requests"])}

## 4. TCP connections for 100 sequential token refreshes

{_connections(results["connections"])}

## 5. Concurrent `getAccessToken` on an expired token

{_concurrent(results["concurrent"])}

## 6. Sign-in throughput and memory per session

Complete sign-in flows (`signIn`, approval at the provider, `handleSignInCallback`), every
flow with its own session, N at a time on one event loop:

{_throughput(results["throughput"]["throughput"])}

Memory per signed-in session:

{_memory(results["throughput"]["memory"])}

## Hot paths behind missed targets

{_profiles(profiles)}

## Changes made while benchmarking

{_table(["change", "measure", "before", "after"], HISTORY)}

## Machine

{machine}
"""
    path.write_text(text, encoding="utf-8")
