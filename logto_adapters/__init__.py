"""logto_adapters: thin I/O drivers (requests, httpx) over :mod:`logto_core`."""
