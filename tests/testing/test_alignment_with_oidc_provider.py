"""Behaviours of the test provider aligned with the real oidc-provider (see tests/interop/)."""

from __future__ import annotations


def test_unknown_resource_on_refresh_consumes_a_public_clients_refresh_token() -> None:
    """Pinned against oidc-provider (tests/interop/test_provider_differences.py): the refresh
    token rotates before the resource indicator is validated. (The SDK refuses such a
    request locally, see test_resource_not_configured_is_refused_before_any_request; this
    sends it to the provider directly.)"""
    from logto_core.protocol.token_endpoint import build_refresh
    from tests.harness import API, Harness

    h = Harness(client_id="spa")
    h.sign_in()
    before = h.session().refresh_token
    metadata = h.core.provider.metadata
    assert before is not None and metadata is not None
    request = build_refresh(
        h.core.config, metadata, refresh_token=before, resource="https://unknown.example.com"
    )
    response = h.send(request)
    assert response.status == 400 and b"invalid_target" in response.body
    h.clock.advance(4)  # past the reuse window: presenting the consumed token revokes the grant
    assert h.token(resource=API).value is None
    assert not h.session().is_authenticated
