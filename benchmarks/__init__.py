"""Benchmarks of logto-sansio side by side with the official ``logto`` SDK.

Run ``python -m benchmarks`` from the repository root (``make bench``): it prepares
``.venv-bench`` on first use, runs every comparison and writes ``docs/benchmarks.md`` with its
chart ``docs/benchmarks.png``. Keep this module free of imports: it is loaded by whatever
Python starts the command, before the benchmark venv exists.
"""
