"""The blocking flavour: ``client.py`` is GENERATED from :mod:`logto_adapters._async.client`
by ``scripts/unasync.py`` (never edit it by hand; the tests check it is current); ``kit.py``
holds what only the blocking client does, written by hand."""
