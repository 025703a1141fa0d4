"""The tutorial's sample application and the ``make demo`` walkthrough.

``tutorial_async`` is the tutorial's Flask app on the async client, ``tutorial_sync`` the same
app with sync views on the sync client: in both, only the import lines differ from the
tutorial (plus the configuration read from the environment, and a missing ``+`` restored in
the home page). ``python -m logto_adapters.demo`` runs the walkthrough.
"""
