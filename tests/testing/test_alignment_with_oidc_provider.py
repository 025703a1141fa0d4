"""Behaviours of the test provider aligned with the real oidc-provider (see tests/interop/)."""

from __future__ import annotations


def test_unknown_resource_on_refresh_consumes_a_public_clients_refresh_token() -> None:
    """Pinned against oidc-provider (tests/interop/test_provider_differences.py): the refresh
    token rotates before the resource indicator is validated."""
    from tests.harness import API, Harness

    h = Harness(client_id="spa")
    h.sign_in()
    before = h.session().refresh_token
    assert before is not None
    outcome = h.token(resource="https://unknown.example.com")
    assert outcome.error is not None and getattr(outcome.error, "error", None) == "invalid_target"
    assert h.session().refresh_token == before  # the client never saw the successor
    h.clock.advance(4)  # past the reuse window: presenting the consumed token revokes the grant
    assert h.token(resource=API).value is None
    assert not h.session().is_authenticated
