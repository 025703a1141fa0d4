"""The tutorial's Flask application, async views on the async client.

Apart from the configuration (read from the environment, see ``settings.py``) and the
``app``/``secret_key`` lines the tutorial leaves implicit, this is the tutorial's code with
only the import lines changed. The tutorial's home page lacks a ``+`` between ``"<br>"`` and
the userinfo call (it would call a string); it is restored here.
"""

from __future__ import annotations

from functools import wraps
from typing import Any, Union

from flask import Flask, redirect, request, session

from logto_adapters.aio import LogtoClient, LogtoConfig, Storage, UserInfoScope

from .settings import from_environment

settings = from_environment()
app = Flask(__name__)
app.secret_key = settings.secret_key


class SessionStorage(Storage):
    def get(self, key: str) -> Union[str, None]:  # noqa: UP007 - the tutorial's spelling
        return session.get(key, None)

    def set(self, key: str, value: Union[str, None]) -> None:  # noqa: UP007
        session[key] = value

    def delete(self, key: str) -> None:
        session.pop(key, None)


client = LogtoClient(
    LogtoConfig(
        endpoint=settings.endpoint,
        appId=settings.app_id,
        appSecret=settings.app_secret,
        scopes=[UserInfoScope.email, UserInfoScope.organizations, *settings.scopes],
        resources=settings.resources,
    ),
    storage=SessionStorage(),
)


@app.route("/")
async def home() -> Any:
    if client.isAuthenticated() is False:
        return "Not authenticated <a href='/sign-in'>Sign in</a>"

    return (
        # Get local ID token claims
        client.getIdTokenClaims().model_dump_json(exclude_unset=True)
        + "<br>"
        # Fetch user info from Logto userinfo endpoint
        + (await client.fetchUserInfo()).model_dump_json(exclude_unset=True)
        + "<br><a href='/sign-out'>Sign out</a>"
    )


@app.route("/sign-in")
async def sign_in() -> Any:
    # Get the sign-in URL and redirect the user to it
    return redirect(
        await client.signIn(
            redirectUri=f"{settings.base_url}/callback",
        )
    )


@app.route("/callback")
async def callback() -> Any:
    try:
        await client.handleSignInCallback(request.url)  # Handle a lot of stuff
        return redirect("/")  # Redirect the user to the home page after a successful sign-in
    except Exception as e:
        # Change this to your error handling logic
        return "Error: " + str(e)


@app.route("/sign-out")
async def sign_out() -> Any:
    return redirect(
        # Redirect the user to the home page after a successful sign-out
        await client.signOut(postLogoutRedirectUri=f"{settings.base_url}/")
    )


def authenticated(func: Any) -> Any:
    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if client.isAuthenticated() is False:
            return redirect("/sign-in")  # Or directly call `client.signIn`
        return await func(*args, **kwargs)

    return wrapper


@app.route("/protected")
@authenticated
async def protected() -> Any:
    return "Protected page"


@app.route("/api-token")
@authenticated
async def api_token() -> Any:
    resource = request.args.get("resource") or (settings.resources or [""])[0]
    claims = await client.getAccessTokenClaims(resource)
    return claims.model_dump_json(exclude_unset=True)


@app.route("/organization-token")
@authenticated
async def organization_token() -> Any:
    organization_id = request.args.get("id") or settings.organization_id
    if not organization_id:
        organizations = client.getIdTokenClaims().organizations or []
        if not organizations:
            return "No organization", 404
        organization_id = organizations[0]
    claims = await client.getOrganizationTokenClaims(organization_id)
    return claims.model_dump_json(exclude_unset=True)
