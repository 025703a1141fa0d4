"""JOSE for the SDK: compact JWS decoding, the provider's key sets, and JWT verification.

* :mod:`logto_core.jose.jwt` - splitting and decoding compact JWS tokens (no verification);
* :mod:`logto_core.jose.keys` - key sets (JWKS): the request, the response check, the
  cacheable :class:`~logto_core.jose.keys.KeySet`; choosing a token's key
  (:func:`~logto_core.jose.keys.select_key`, :data:`~logto_core.jose.keys.NEED_KEYS`) and
  what may follow an unknown ``kid`` (:func:`~logto_core.jose.keys.retry_unknown_key`);
* :mod:`logto_core.jose.chain` - the verification chain every JWT goes through, under a
  :class:`~logto_core.jose.chain.JwtRules` value for its kind (ID tokens:
  :mod:`logto_core.protocol.id_token`).

Everything here is pure: the time arrives as ``now``, the keys as a value.
"""
