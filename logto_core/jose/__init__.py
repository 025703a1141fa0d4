"""JOSE for the SDK: compact JWS decoding, the provider's key sets, and JWT verification.

* :mod:`logto_core.jose.jwt` - splitting and decoding compact JWS tokens (no verification);
* :mod:`logto_core.jose.keys` - key sets (JWKS): the request, the response check, the
  cacheable :class:`~logto_core.jose.keys.KeySet`.
"""
