"""Users' code written the documented way passes ``mypy --strict``, with and without
pydantic's mypy plugin.

Small files in the forms of the README and docs/tutorial.md (camelCase and snake_case
keywords, a plain ``str`` secret, sync and async imports) are written to a temporary
directory outside the repository and checked twice. The library is found through
``mypy_path`` and, as for an installed package, errors inside it are not the users'
(``follow_imports = silent``). Each mode keeps its cache between runs, so a run costs a
few seconds only when the library changed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a few seconds: it runs in the normal suite

REPO = Path(__file__).resolve().parent.parent

USER_FILES = {
    "readme_aio.py": """
from logto_adapters.aio import LogtoClient, LogtoConfig, UserInfoScope

client = LogtoClient(
    LogtoConfig(
        endpoint="https://your-tenant.logto.app",
        appId="your-app-id",
        appSecret="your-app-secret",
        scopes=[UserInfoScope.email],
    ),
)


async def sign_in() -> str:
    return await client.signIn(redirectUri="https://your-app.example/callback")
""",
    "tutorial_aio.py": """
from logto_adapters.aio import LogtoClient, LogtoConfig, Storage, UserInfoScope

session: dict[str, str | None] = {}


class SessionStorage(Storage):
    def get(self, key: str) -> str | None:
        return session.get(key)

    def set(self, key: str, value: str | None) -> None:
        session[key] = value

    def delete(self, key: str) -> None:
        session.pop(key, None)


client = LogtoClient(
    LogtoConfig(
        endpoint="https://your-tenant.logto.app",
        appId="your-app-id",
        appSecret="your-app-secret",
        scopes=[UserInfoScope.email, UserInfoScope.organizations],
        resources=["https://api.your-app.example"],
    ),
    storage=SessionStorage(),
)


async def api_token() -> str | None:
    return await client.getAccessToken("https://api.your-app.example")
""",
    "snake_sync.py": """
import os

from pydantic import SecretStr

from logto_adapters.sync import LogtoClient, LogtoConfig, Prompt

config = LogtoConfig(
    endpoint="https://your-tenant.logto.app",
    app_id="your-app-id",
    app_secret=os.environ.get("LOGTO_APP_SECRET"),
    scopes=["email"],
    resources=["https://api.your-app.example"],
    clock_tolerance=30,
    token_expiry_margin=10.5,
    allow_insecure_loopback=False,
    discovery_max_age=600,
    jwks_max_age=600,
    jwks_refetch_cooldown=30,
    id_token_algorithms=["ES384", "RS256"],
)
public = LogtoConfig(endpoint="http://localhost:3001", appId="spa", prompt=[Prompt.login])
mixed = LogtoConfig(
    endpoint="https://t.logto.app", appId="x", app_secret=SecretStr("s"), clockTolerance=1.0
)
changed: LogtoConfig = config.replace(app_id="other", appSecret=None)
copied: LogtoConfig = config.model_copy(update={"appId": "z"})
secret: str | None = config.secret
client = LogtoClient(config)
url: str = client.signIn(redirectUri="https://your-app.example/callback")
""",
}

PLUGIN = "plugins = pydantic.mypy\n"


def _cache_dir(mode: str) -> Path:
    # One cache per worktree and mode, kept between runs (mypy checks it is still valid).
    key = hashlib.sha256(f"{REPO}|{sys.version}".encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"logto-sansio-user-typing-{key}" / mode


def _config(plugin: bool) -> str:
    return (
        "[mypy]\nstrict = True\npython_version = 3.10\n"
        f"mypy_path = {REPO}\n"
        + (PLUGIN if plugin else "")
        + "[mypy-logto_core.*,logto_adapters.*]\nfollow_imports = silent\n"
    )


def test_documented_config_forms_pass_mypy_strict(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(REPO)
    for name, text in USER_FILES.items():
        (tmp_path / name).write_text(text.lstrip())
    runs = {}
    for mode, plugin in (("plugin", True), ("plain", False)):
        config = tmp_path / f"{mode}.ini"
        config.write_text(_config(plugin))
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(_cache_dir(mode)),
            *sorted(USER_FILES),
        ]
        # Both modes at once: they share nothing but the sources.
        runs[mode] = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for mode, process in runs.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"mypy --strict ({mode}):\n{output}"
        assert f"no issues found in {len(USER_FILES)} source files" in output


def test_the_check_would_catch_a_wrong_call(tmp_path: Path) -> None:
    # The same set-up reports what the old signature got wrong, so the test above can fail.
    (tmp_path / "wrong.py").write_text(
        "from logto_adapters.sync import LogtoConfig\n"
        'LogtoConfig(endpoint="https://t.logto.app")\n'
        'LogtoConfig(endpoint="https://t.logto.app", appId="a", appSecret=1)\n'
    )
    config = tmp_path / "plugin.ini"
    config.write_text(_config(True))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(_cache_dir("plugin")),
            "wrong.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1 and "Found 2 errors" in result.stdout, result.stdout
