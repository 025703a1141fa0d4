"""The asyncio flavour: ``client.py`` is the one source of both clients (the blocking one in
:mod:`logto_adapters._sync` is generated from it by ``scripts/unasync.py``); ``kit.py`` holds
what only asyncio does, written by hand."""
