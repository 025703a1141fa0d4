"""An interactive sign-in page, so a person (or a browser test) can use the test provider.

``GET <issuer>/auth?...`` shows a form asking for a username; submitting it
(``POST <issuer>/auth/interaction``) approves the request as that user and answers with a
303 redirect to the app's callback, exactly what :meth:`TestProvider.approve` returns. The
"Cancel" button denies it. Programmatic tests can keep calling ``approve`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import parse_qsl, urlencode

from logto_core.http import HttpResponse

from .authorize import UnredirectableRequestError

Approve = Callable[[str, str], str]
Deny = Callable[[str], str]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Logto test provider</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto}}
label,input,button{{display:block;margin:.5rem 0}}.error{{color:#b00}}</style></head>
<body><h1>Sign in</h1><p>to <strong id="client">{client}</strong></p>{error}
<form method="post" action="{action}">
<input type="hidden" name="request" value="{request}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autofocus>
<button type="submit" name="action" value="approve" id="submit">Sign in</button>
<button type="submit" name="action" value="deny" id="cancel">Cancel</button>
</form><p>Known users: {users}</p></body></html>"""


def render(
    *, query: str, client_id: str, usernames: list[str], action: str, error: str | None = None
) -> HttpResponse:
    """The sign-in form for the authorization request carried by ``query``."""
    html = _PAGE.format(
        client=escape(client_id),
        error=f'<p class="error" id="error">{escape(error)}</p>' if error else "",
        action=escape(action),
        request=escape(query),
        users=escape(", ".join(usernames)) or "none",
    )
    return HttpResponse.build(
        200,
        {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"},
        html.encode(),
    )


def submit(
    body: bytes,
    *,
    authorization_endpoint: str,
    find_user: Callable[[str], str | None],
    approve: Approve,
    deny: Deny,
    usernames: list[str],
    action: str,
) -> HttpResponse:
    """Handle the form: redirect to the callback, or show the form again with an error."""
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    query = form.get("request", "")
    url = f"{authorization_endpoint}?{query}"
    client_id = dict(parse_qsl(query)).get("client_id", "")
    try:
        if form.get("action") == "deny":
            return _see_other(deny(url))
        sub = find_user(form.get("username", "").strip())
        if sub is None:
            return render(
                query=query,
                client_id=client_id,
                usernames=usernames,
                action=action,
                error="Unknown username.",
            )
        return _see_other(approve(url, sub))
    except UnredirectableRequestError as error:
        text = f"Invalid authorization request: {error.error}"
        return HttpResponse.build(400, {"content-type": "text/plain; charset=utf-8"}, text.encode())


def _see_other(location: str) -> HttpResponse:
    return HttpResponse.build(303, {"location": location, "cache-control": "no-store"}, b"")


def query_of(params: dict[str, str], resources: list[str]) -> str:
    """Rebuild the authorization query (repeated ``resource`` included) for the hidden field."""
    pairs = [(k, v) for k, v in params.items() if k != "resource"]
    pairs += [("resource", r) for r in resources]
    return urlencode(pairs)
