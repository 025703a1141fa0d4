"""Create (once) and enter the benchmark venv ``.venv-bench``.

It holds the project (editable, with the ``requests`` and ``httpx`` extras), the official SDK
(PyPI's ``logto``, which brings ``aiohttp`` and ``PyJWT``), ``matplotlib`` for the chart and
``pyinstrument`` for ad-hoc profiling. The official SDK coexists with our dependencies in one
venv (``pip check`` is clean: it needs ``pydantic`` 2, which we share, and none of ours), so
both sides run in the same process. The venv is rebuilt when ``pyproject.toml`` or the list
below changes (a stamp file records their digest).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench"
STAMP = VENV / ".bench-installed"
EXTRA = ("logto==0.2.1", "matplotlib>=3.8", "pyinstrument>=4.6")
CHILD_FLAG = "LOGTO_BENCH_IN_VENV"


def _python() -> Path:
    return VENV / "bin" / "python"


def _digest() -> str:
    text = (ROOT / "pyproject.toml").read_bytes() + "\n".join(EXTRA).encode()
    return hashlib.sha256(text).hexdigest()


def _inside() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure() -> None:
    """Build the venv if needed; then re-run this command inside it (no-op once inside)."""
    if _inside():
        return
    if os.environ.get(CHILD_FLAG):
        raise SystemExit("benchmarks: .venv-bench exists but could not be entered")
    if not (STAMP.exists() and STAMP.read_text().strip() == _digest()):
        print(f"benchmarks: preparing {VENV.name} (first run only)...", file=sys.stderr)
        if not _python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[requests,httpx]", *EXTRA], check=True)
        subprocess.run([str(_python()), "-m", "pip", "check"], check=True)
        STAMP.write_text(_digest())
    env = {**os.environ, CHILD_FLAG: "1"}
    os.chdir(ROOT)
    os.execve(str(_python()), [str(_python()), "-m", "benchmarks", *sys.argv[1:]], env)
