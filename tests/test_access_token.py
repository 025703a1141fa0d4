"""Access tokens at the API (logto_core/protocol/access_token.py): RFC 9068 through the JWT
chain, every bad token on its own, the authorization checks (scopes, organization,
organization roles), properties over claims and time, and the flow against the test
provider in memory (real tokens, requests counted, key rotation)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc.jwk import OctKey

from logto_core import operations as ops
from logto_core.context import Context
from logto_core.driver import run_operation, run_sync
from logto_core.error_codes import describe
from logto_core.errors import LogtoError, LogtoUsageError, TransportError
from logto_core.flows import client_credentials_token
from logto_core.http import HttpRequest, HttpResponse
from logto_core.jose.keys import NEED_KEYS, KeySet
from logto_core.models import AccessTokenClaims
from logto_core.protocol.access_token import (
    AccessTokenPolicy,
    Requirements,
    authorize,
    check_access_token,
    precheck,
    resource_server_config,
    token_organization,
    verify_access_token,
)
from logto_core.protocol.bearer import AccessTokenError
from logto_core.runtime import Runtime
from logto_core.session import TokenKey
from logto_core.sleep import Sleep
from logto_core.testing.keys import SignOptions
from tests.harness import API, ENDPOINT, FakeClock, Harness
from tests.jwt_factory import (
    ALL_ALGORITHMS,
    CLIENT_ID,
    ISSUER,
    KEY_FOR_ALG,
    KEYS,
    NOW,
    REMOVE,
    SUBJECT,
    TOLERANCE,
    b64_json,
    key_set,
    make_token,
    sign,
)

AUDIENCE = "https://orders.example.com"
KEY_SET = key_set()


def at_claims(now: float = NOW) -> dict[str, Any]:
    return {
        "jti": "jti-0123",
        "sub": SUBJECT,
        "iat": int(now),
        "exp": int(now) + 3600,
        "scope": "read write",
        "client_id": CLIENT_ID,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }


def at_token(
    alg: str = "ES384",
    *,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
) -> str:
    """A valid access token (typ at+jwt) for AUDIENCE, with changes applied."""
    key = KEYS[KEY_FOR_ALG[alg]]
    base_header: dict[str, Any] = {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    return sign(_apply(base_header, header), _apply(at_claims(), claims), key=key.private)


def _apply(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    result = dict(base)
    for name, value in (changes or {}).items():
        if value is REMOVE:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def check(token: str, *, keys: KeySet | None = KEY_SET, now: float = NOW, **kw: Any) -> Any:
    return check_access_token(
        token,
        keys=keys,
        issuer=kw.get("issuer", ISSUER),
        audience=kw.get("audience", AUDIENCE),
        algorithms=kw.get("algorithms", ALL_ALGORITHMS),
        now=now,
        clock_tolerance=TOLERANCE,
    )


def refused(token: str, code: str, claim: str | None = None, **kw: Any) -> AccessTokenError:
    with pytest.raises(AccessTokenError) as caught:
        check(token, **kw)
    error = caught.value
    assert error.code == code
    if claim is not None:
        assert error.claim == claim
    assert (error.status, error.error) == (401, "invalid_token")
    assert_no_token_shown(error, token)
    entry = describe(code)
    assert entry is not None and entry.code == code and entry.error is AccessTokenError
    return error


def attempt(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, AccessTokenError | None]:
    """``function``'s value and no error, or no value and the error it raised."""
    try:
        return function(*args, **kwargs), None
    except AccessTokenError as error:
        return None, error


def assert_no_token_shown(error: LogtoError, token: str) -> None:
    for part in [p for p in [token, *token.split(".")] if len(p) > 8]:
        assert part not in str(error) and part not in repr(error)
        if isinstance(error, AccessTokenError):
            assert part not in error.www_authenticate()


# ---- a valid token ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_a_valid_access_token_gives_its_claims(alg: str) -> None:
    claims = check(at_token(alg))
    assert isinstance(claims, AccessTokenClaims)
    assert (claims.sub, claims.client_id, claims.jti) == (SUBJECT, CLIENT_ID, "jti-0123")
    assert claims.aud == AUDIENCE and claims.scope == "read write"


def test_fractional_times_are_rounded_down() -> None:
    claims = check(at_token(claims={"exp": NOW + 100.9, "iat": NOW - 0.5}))
    assert (claims.exp, claims.iat) == (int(NOW) + 100, int(NOW) - 1)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_both_spellings_of_the_type_are_accepted(typ: str) -> None:
    assert check(at_token(header={"typ": typ})).sub == SUBJECT


def test_unknown_claims_are_kept_and_other_audiences_allowed() -> None:
    claims = check(at_token(claims={"aud": ["https://other.example.com", AUDIENCE], "act": {}}))
    assert claims.aud == ["https://other.example.com", AUDIENCE]
    assert (claims.model_extra or {})["act"] == {}


# ---- every bad token --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ", [REMOVE, None, "JWT", "application/jwt", "logout+jwt", "at+jwt2", 5]
)
def test_a_token_without_the_access_token_type_is_refused(typ: Any) -> None:
    refused(at_token(header={"typ": typ}), "access_token.typ_not_allowed", "typ")


def test_an_id_token_presented_as_an_access_token_is_refused() -> None:
    id_token = make_token()  # Logto's ID tokens carry no typ; aud is the client id
    refused(id_token, "access_token.typ_not_allowed", "typ")
    refused(id_token, "access_token.typ_not_allowed", "typ", audience=CLIENT_ID)
    # Even typed as an access token, it is not issued to this API.
    retyped = make_token(header={"typ": "at+jwt"}, claims={"client_id": CLIENT_ID, "jti": "j"})
    refused(retyped, "access_token.aud_mismatch", "aud")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused_even_if_listed(alg: str) -> None:
    token = sign({"alg": alg, "typ": "at+jwt"}, at_claims(), sign_alg="none")
    refused(token, "access_token.alg_not_allowed", "alg", algorithms=[*ALL_ALGORITHMS, alg])


@pytest.mark.parametrize("name", ["rsa", "P-384"])
def test_hmac_signed_with_the_public_key_is_refused(name: str) -> None:
    """The key-confusion attack: the provider's public key used as an HMAC secret."""
    public = KEYS[name]
    secret = OctKey.import_key(json.dumps(public.public_jwk(), sort_keys=True).encode())
    for alg in ("HS256", "HS384", "HS512"):
        header = {"alg": alg, "kid": public.kid, "typ": "at+jwt"}
        token = sign(header, at_claims(), key=secret, sign_alg=alg)
        refused(token, "access_token.alg_not_allowed", "alg", algorithms=[*ALL_ALGORITHMS, alg])


def test_an_algorithm_outside_the_accepted_set_is_refused() -> None:
    refused(at_token("RS256"), "access_token.alg_not_allowed", "alg", algorithms=["ES384"])


def test_a_critical_header_is_refused() -> None:
    refused(at_token(header={"crit": ["exp"]}), "access_token.crit_unsupported", "crit")


def test_a_non_string_kid_is_refused() -> None:
    refused(at_token(header={"kid": 7}), "access_token.header_invalid", "kid")


def test_expiry_with_the_clock_tolerance() -> None:
    token = at_token(claims={"exp": NOW - 10})
    assert check(token).sub == SUBJECT  # 10 s late, within the 60 s tolerance
    refused(token, "access_token.expired", "exp", now=NOW - 10 + TOLERANCE)
    refused(at_token(claims={"exp": NOW - 3600}), "access_token.expired", "exp")


def test_times_in_the_future_are_refused() -> None:
    refused(at_token(claims={"iat": NOW + 600}), "access_token.iat_future", "iat")
    refused(at_token(claims={"nbf": NOW + 600}), "access_token.not_yet_valid", "nbf")
    refused(at_token(claims={"auth_time": NOW + 600}), "access_token.auth_time_future")
    assert check(at_token(claims={"iat": NOW + 30, "nbf": NOW + 30})).sub == SUBJECT


@pytest.mark.parametrize(
    "aud", ["https://api.example.com", CLIENT_ID, ["https://a.example.com"], f"{AUDIENCE}/"]
)
def test_a_token_for_another_audience_is_refused(aud: Any) -> None:
    refused(at_token(claims={"aud": aud}), "access_token.aud_mismatch", "aud")


def test_a_token_of_another_issuer_is_refused() -> None:
    other = at_token(claims={"iss": "https://evil.example.com/oidc"})
    refused(other, "access_token.iss_mismatch", "iss")
    refused(at_token(), "access_token.iss_mismatch", "iss", issuer="https://other.logto.app/oidc")


@pytest.mark.parametrize("name", ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"])
def test_every_claim_rfc_9068_requires(name: str) -> None:
    refused(at_token(claims={name: REMOVE}), "access_token.missing_claim", name)
    refused(at_token(claims={name: None}), "access_token.missing_claim", name)


@pytest.mark.parametrize(
    ("name", "value"),
    [("client_id", 5), ("client_id", ""), ("jti", ["j"]), ("jti", ""), ("sub", 5), ("exp", "1")],
)
def test_required_claims_of_the_wrong_type(name: str, value: Any) -> None:
    refused(at_token(claims={name: value}), "access_token.invalid_claim", name)


@pytest.mark.parametrize(
    ("name", "value"), [("scope", ["read"]), ("organization_id", 5), ("organization_roles", "a:b")]
)
def test_optional_claims_of_the_wrong_type(name: str, value: Any) -> None:
    refused(at_token(claims={name: value}), "access_token.claims_invalid", name)


def test_a_tampered_token_is_refused() -> None:
    token = at_token()
    header, payload, signature = token.split(".")
    forged_payload = b64_json({**at_claims(), "scope": "read write admin"})
    refused(f"{header}.{forged_payload}.{signature}", "access_token.bad_signature")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    refused(f"{header}.{payload}.{flipped}", "access_token.bad_signature")
    refused(f"{header}.{payload}.", "access_token.bad_signature")


def test_a_token_signed_by_another_key_with_a_known_kid_is_refused() -> None:
    token = sign(
        {"alg": "ES384", "kid": KEYS["P-384"].kid, "typ": "at+jwt"},
        at_claims(),
        key=KEYS["P-256"].private,  # wrong curve for ES384, and not the named key
        sign_alg="ES256",
    )
    refused(token, "access_token.bad_signature")


def test_an_unknown_key_asks_for_keys_then_is_refused() -> None:
    token = at_token(header={"kid": "rotated-away"})
    assert check(token) is NEED_KEYS
    assert check(at_token(), keys=None) is NEED_KEYS
    with pytest.raises(AccessTokenError) as caught:
        verify_access_token(
            token,
            keys=KEY_SET,
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=ALL_ALGORITHMS,
            now=NOW,
            clock_tolerance=TOLERANCE,
        )
    assert caught.value.code == "access_token.kid_unknown" and caught.value.status == 401


def test_a_kid_that_names_a_key_of_another_type_is_refused() -> None:
    token = at_token(header={"kid": KEYS["rsa"].kid})
    refused(token, "access_token.key_mismatch", "alg")


def test_several_fitting_keys_without_a_kid_are_refused() -> None:
    doubled = KeySet((*KEY_SET.keys, {**KEYS["P-384"].public_jwk(), "kid": "other"}), NOW)
    refused(at_token(header={"kid": REMOVE}), "access_token.kid_ambiguous", "kid", keys=doubled)


GARBAGE = [
    "",
    "garbage",
    "a.b",
    "a.b.c",
    "..",
    "opaque-access-token-" + "x" * 40,
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0",
    "aGVsbG8.d29ybGQ.c2ln",  # segments that are not JSON
    "a.b.c.d.e",  # the shape of an encrypted token
    "e" * 20_000,
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_malformed(token: str) -> None:
    refused(token, "access_token.malformed")
    with pytest.raises(AccessTokenError) as caught:
        precheck(token, AccessTokenPolicy.of(AUDIENCE))
    assert caught.value.code == "access_token.malformed"


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (make_token(), "access_token.typ_not_allowed"),  # an ID token
        (sign({"alg": "none", "typ": "at+jwt"}, at_claims()), "access_token.alg_not_allowed"),
        (at_token("RS256"), "access_token.alg_not_allowed"),  # outside the API's own list
        (at_token(header={"crit": ["x"]}), "access_token.crit_unsupported"),
    ],
)
def test_the_precheck_refuses_headers_without_the_provider(token: str, code: str) -> None:
    with pytest.raises(AccessTokenError) as caught:
        precheck(token, AccessTokenPolicy.of(AUDIENCE, ["ES384", "ES256"]))
    assert caught.value.code == code
    precheck(at_token(), AccessTokenPolicy.of(AUDIENCE, ["ES384"]))  # the rest is the chain's


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.hex()))
def test_any_text_is_claims_or_an_invalid_token(text: str) -> None:
    result, error = attempt(check, text)
    if error is None:
        assert result is NEED_KEYS or isinstance(result, AccessTokenClaims)
    else:
        assert (error.status, error.error) == (401, "invalid_token")
        assert error.code.startswith("access_token.")
        entry = describe(error.code)
        assert entry is not None and entry.code == error.code  # each check has its entry


@given(st.floats(min_value=-7200, max_value=7200))
def test_a_token_is_valid_exactly_within_its_times(offset: float) -> None:
    now = NOW + offset
    token = at_token()  # iat NOW, exp NOW + 3600
    valid = NOW - TOLERANCE <= now < NOW + 3600 + TOLERANCE
    _, error = attempt(check, token, now=now)
    assert (error is None) == valid
    assert error is None or error.code in {"access_token.expired", "access_token.iat_future"}


# ---- what the request needs -------------------------------------------------------------------


def claims_of(**changes: Any) -> AccessTokenClaims:
    return AccessTokenClaims.model_validate(_apply(at_claims(), changes))


def forbidden(claims: AccessTokenClaims, requirements: Requirements, code: str) -> AccessTokenError:
    with pytest.raises(AccessTokenError) as caught:
        authorize(claims, requirements)
    error = caught.value
    assert error.code == code
    assert (error.status, error.error) == (403, "insufficient_scope")
    entry = describe(code)
    assert entry is not None and entry.code == code
    return error


def test_required_scopes_must_all_be_granted() -> None:
    authorize(claims_of(), Requirements.of(["read"]))
    authorize(claims_of(), Requirements.of(["write", "read"]))
    authorize(claims_of(), Requirements.of("read write"))
    error = forbidden(
        claims_of(), Requirements.of(["read", "admin"]), "access_token.insufficient_scope"
    )
    assert error.scope == "read admin"  # RFC 6750: the scope the request needs
    assert "'admin'" in error.message
    assert error.www_authenticate().endswith('scope="read admin"')


def test_a_scope_is_a_whole_word_of_the_scope_claim() -> None:
    forbidden(
        claims_of(scope="reader write"),
        Requirements.of(["read"]),
        "access_token.insufficient_scope",
    )
    forbidden(claims_of(scope=REMOVE), Requirements.of(["read"]), "access_token.insufficient_scope")
    forbidden(claims_of(scope=""), Requirements.of(["read"]), "access_token.insufficient_scope")
    authorize(claims_of(scope=REMOVE), Requirements())


def test_the_organization_of_an_api_token_is_its_claim() -> None:
    claims = claims_of(organization_id="o1")
    assert token_organization(claims) == "o1"
    authorize(claims, Requirements.of(organizationId="o1"))
    forbidden(claims, Requirements.of(organizationId="o2"), "access_token.organization_mismatch")
    error = forbidden(
        claims_of(), Requirements.of(organizationId="o1"), "access_token.organization_mismatch"
    )
    assert "not for an organization" in error.message


def test_the_organization_of_an_organization_token_is_its_audience() -> None:
    claims = claims_of(aud="urn:logto:organization:o1")
    assert token_organization(claims) == "o1"
    authorize(claims, Requirements.of(organizationId="o1"))
    forbidden(claims, Requirements.of(organizationId="o2"), "access_token.organization_mismatch")
    # The claim, when present, is what counts.
    assert (
        token_organization(claims_of(aud="urn:logto:organization:o1", organization_id="o2")) == "o2"
    )
    two = claims_of(aud=["urn:logto:organization:o1", "urn:logto:organization:o2"])
    assert token_organization(two) is None
    forbidden(two, Requirements.of(organizationId="o1"), "access_token.organization_mismatch")
    assert token_organization(claims_of(aud="urn:logto:organization:")) is None


def test_organization_roles() -> None:
    claims = claims_of(organization_id="o1", organization_roles=["o1:admin", "o2:owner"])
    authorize(claims, Requirements.of(organizationId="o1", organizationRoles=["admin"]))
    authorize(claims, Requirements.of(organizationRoles="admin"))  # the token's organization
    forbidden(
        claims,
        Requirements.of(organizationId="o1", organizationRoles=["owner"]),  # o2's role, not o1's
        "access_token.organization_role_missing",
    )
    forbidden(
        claims_of(organization_id="o1"),  # no roles claim at all: refused, never assumed
        Requirements.of(organizationRoles=["admin"]),
        "access_token.organization_role_missing",
    )
    forbidden(
        claims_of(organization_roles=["o1:admin"]),  # for no organization
        Requirements.of(organizationRoles=["admin"]),
        "access_token.organization_mismatch",
    )


SCOPES = st.sampled_from(["read", "write", "admin", "orders:read", "x"])


@given(
    st.sets(SCOPES),
    st.sets(SCOPES),
    st.none() | st.sampled_from(["o1", "o2"]),
    st.none() | st.sampled_from(["o1", "o2"]),
)
def test_authorize_allows_exactly_what_the_token_grants(
    granted: set[str], needed: set[str], token_org: str | None, wanted: str | None
) -> None:
    claims = claims_of(scope=" ".join(sorted(granted)), organization_id=token_org or REMOVE)
    allowed = needed <= granted and (wanted is None or wanted == token_org)
    _, error = attempt(authorize, claims, Requirements.of(sorted(needed), wanted))
    assert (error is None) == allowed
    assert error is None or error.status == 403


@pytest.mark.parametrize(
    "kwargs",
    [
        {"requiredScopes": ['re"ad']},
        {"requiredScopes": ["read", ""]},
        {"requiredScopes": [5]},
        {"organizationId": ""},
        {"organizationId": 5},
        {"organizationRoles": [""]},
    ],
)
def test_invalid_requirements_are_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LogtoUsageError) as caught:
        Requirements.of(**kwargs)
    assert caught.value.code == "usage.access_requirements"


def test_requirements_drop_duplicates_and_split_strings() -> None:
    assert Requirements.of("read  write read").scopes == ("read", "write")
    assert Requirements.of(["read", "read"]).scopes == ("read",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"audience": ""},
        {"audience": "orders"},  # not an absolute URI
        {"audience": "https://api.example.com/#x"},
        {"audience": "https://apï.example.com"},
        {"audience": 5},
        {"audience": AUDIENCE, "algorithms": []},
        {"audience": AUDIENCE, "algorithms": ["none"]},
        {"audience": AUDIENCE, "algorithms": ["HS256"]},
        {"audience": AUDIENCE, "algorithms": ["ES256K"]},
        {"audience": AUDIENCE, "algorithms": ["ES384", 5]},
    ],
)
def test_an_invalid_policy_is_a_usage_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LogtoUsageError) as caught:
        AccessTokenPolicy.of(**kwargs)
    assert caught.value.code == "usage.resource_server"


def test_a_resource_server_config_has_no_secret_and_names_the_api() -> None:
    policy = AccessTokenPolicy.of("urn:logto:organization:o1", ["ES384"], realm="orgs")
    config = resource_server_config(ENDPOINT, policy, clockTolerance=5)
    assert config.appSecret is None and not config.is_confidential
    assert config.appId == "urn:logto:organization:o1" and config.clockTolerance == 5
    assert policy.algorithms == frozenset({"ES384"})


# ---- the flow, against the test provider ------------------------------------------------------

M2M = "m2m"
M2M_SECRET = "m2m-secret-0123456789"


class World:
    """The test provider in memory, a client harness that gets real tokens from it, and a
    resource server's context that verifies them."""

    def __init__(self, audience: str = API, realm: str | None = None) -> None:
        self.client = Harness()
        self.clock: FakeClock = self.client.clock
        self.provider = self.client.provider
        self.provider.add_client(M2M, secret=M2M_SECRET, kind="m2m")
        self.provider.grant_permissions(M2M, API, ["read", "write"])
        self.provider.add_member("o1", M2M, roles=["robot"], scopes=["org:read"])
        self.provider.grant_organization_resource_permissions("o1", M2M, API, ["read"])
        self.policy = AccessTokenPolicy.of(audience, realm=realm)
        self.api = Context(
            resource_server_config(ENDPOINT, self.policy), runtime=Runtime(clock=self.clock)
        )
        self.machine = Context(
            self.client.core.config.replace(appId=M2M, appSecret=M2M_SECRET),
            runtime=Runtime(clock=self.clock),
        )
        self.fail: list[TransportError] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        if self.fail:
            raise self.fail.pop(0)
        return self.provider.respond(request).response

    def perform(self, effect: object) -> object:
        if isinstance(effect, HttpRequest):
            return self.send(effect)
        assert isinstance(effect, Sleep), effect  # nothing else: no session, no flight
        return None

    def m2m_token(
        self, resource: str | None = API, org: str | None = None, scopes: Any = None
    ) -> str:
        key = TokenKey.of(resource, org, scopes)
        return run_sync(client_credentials_token(self.machine, key), self.send).unwrap().token

    def verify(self, token: str, *args: Any, **kwargs: Any) -> AccessTokenClaims:
        operation = ops.verify_access_token_op(
            self.api, token, self.policy, Requirements.of(*args, **kwargs)
        )
        return run_operation(operation, self.perform)

    def verify_header(self, header: str | None, *args: Any) -> AccessTokenClaims:
        operation = ops.verify_authorization_op(
            self.api, header, self.policy, Requirements.of(*args)
        )
        return run_operation(operation, self.perform)

    def refused(self, token: str, code: str, *args: Any, **kwargs: Any) -> AccessTokenError:
        with pytest.raises(AccessTokenError) as caught:
            self.verify(token, *args, **kwargs)
        assert caught.value.code == code
        assert_no_token_shown(caught.value, token)
        return caught.value

    def requests(self, endpoint: str) -> int:
        return sum(1 for entry in self.provider.log if entry.endpoint == endpoint)

    def forged(self, claims: dict[str, Any], **header: Any) -> str:
        """Signed with the provider's own current key: only the given defect is wrong."""
        options = SignOptions(header_overrides=header or None)
        return self.provider.keys.sign(claims, typ="at+jwt", options=options)

    def claims_for(self, token: str) -> dict[str, Any]:
        return dict(self.api.access_token_claims(token).model_dump(exclude_unset=True))


@pytest.fixture
def world() -> World:
    return World()


def test_a_machine_token_verifies_and_then_costs_no_request(world: World) -> None:
    token = world.m2m_token(scopes=["read"])
    discovery, jwks = world.requests("discovery"), world.requests("jwks")
    claims = world.verify(token, ["read"])
    assert (claims.sub, claims.client_id, claims.aud) == (M2M, M2M, API)
    assert world.requests("discovery") == discovery + 1 and world.requests("jwks") == jwks + 1
    for _ in range(3):
        assert world.verify(token, "read").jti == claims.jti
    assert world.requests("discovery") == discovery + 1 and world.requests("jwks") == jwks + 1


def test_a_user_token_verifies_with_its_scopes(world: World) -> None:
    world.client.sign_in(user="bob")
    token = world.client.token(resource=API).unwrap()
    claims = world.verify(token, ["read"])
    assert claims.sub == "bob" and claims.client_id == "web"
    error = world.refused(token, "access_token.insufficient_scope", ["read", "write"])
    assert error.scope == "read write" and error.status == 403


def test_organization_tokens(world: World) -> None:
    scoped = world.m2m_token(API, "o1", ["read"])
    assert world.verify(scoped, ["read"], "o1").organization_id == "o1"
    world.refused(scoped, "access_token.organization_mismatch", None, "o2")
    world.refused(world.m2m_token(API), "access_token.organization_mismatch", None, "o1")
    # A user's organization token names the organization in its audience.
    world.client.sign_in(user="alice")
    org_token = world.client.token(org="o1").unwrap()
    world.refused(org_token, "access_token.aud_mismatch")  # not for this API
    org_api = World.__new__(World)
    org_api.__dict__.update(world.__dict__)
    org_api.policy = AccessTokenPolicy.of("urn:logto:organization:o1")
    org_api.api = Context(
        resource_server_config(ENDPOINT, org_api.policy), runtime=Runtime(clock=world.clock)
    )
    assert org_api.verify(org_token, ["org:read"], "o1").sub == "alice"
    org_api.refused(org_token, "access_token.organization_mismatch", None, "o2")


def test_organization_roles_in_a_token_signed_by_the_provider(world: World) -> None:
    world.verify(world.m2m_token())  # discovery and keys cached
    claims = {
        **world.claims_for(world.m2m_token(API, "o1", ["read"])),
        "organization_roles": ["o1:robot"],
    }
    token = world.forged(claims)
    assert world.verify(token, None, "o1", organizationRoles=["robot"]).sub == M2M
    world.refused(
        token, "access_token.organization_role_missing", None, "o1", organizationRoles=["admin"]
    )


def test_every_bad_token_signed_by_the_provider_is_refused(world: World) -> None:
    good = world.claims_for(world.m2m_token(scopes=["read"]))
    world.verify(world.forged(good))  # the forger itself makes good tokens
    now = world.clock()
    cases = [
        ({**good, "exp": int(now) - 120}, {}, "access_token.expired"),
        ({**good, "aud": "https://other.example.com"}, {}, "access_token.aud_mismatch"),
        ({**good, "iss": "https://evil.example.com/oidc"}, {}, "access_token.iss_mismatch"),
        ({**good, "aud": "web"}, {"typ": None}, "access_token.typ_not_allowed"),
        ({k: v for k, v in good.items() if k != "client_id"}, {}, "access_token.missing_claim"),
    ]
    for claims, header, code in cases:
        world.refused(world.forged(claims, **header), code)
    tampered = world.provider.keys.sign(good, typ="at+jwt", options=SignOptions(bad_signature=True))
    world.refused(tampered, "access_token.bad_signature")
    unsigned = world.provider.keys.sign(
        good, typ="at+jwt", options=SignOptions(header_overrides={"alg": "none"}, unsigned=True)
    )
    world.refused(unsigned, "access_token.alg_not_allowed")


def test_an_id_token_is_not_an_access_token(world: World) -> None:
    world.client.sign_in()
    id_token = world.client.session().id_token
    assert id_token is not None
    error = world.refused(id_token, "access_token.typ_not_allowed")
    assert error.www_authenticate().startswith('Bearer error="invalid_token"')


def test_key_rotation_refetches_once_then_unknown_keys_are_refused(world: World) -> None:
    world.verify(world.m2m_token())
    jwks = world.requests("jwks")
    world.provider.rotate_signing_key()
    rotated = world.m2m_token()
    assert world.verify(rotated).sub == M2M  # the new key: one refetch
    assert world.requests("jwks") == jwks + 1
    assert world.verify(rotated).sub == M2M and world.requests("jwks") == jwks + 1
    forged = world.forged(world.claims_for(rotated), kid="no-such-key")
    world.refused(forged, "access_token.kid_unknown")  # within the cooldown: no request
    world.refused(forged, "access_token.kid_unknown")
    assert world.requests("jwks") == jwks + 1
    world.clock.advance(61)  # past jwksRefetchCooldown: one more refetch, then refused
    world.refused(forged, "access_token.kid_unknown")
    world.refused(forged, "access_token.kid_unknown")
    assert world.requests("jwks") == jwks + 2


def test_garbage_id_tokens_and_unsigned_tokens_cost_no_request(world: World) -> None:
    for token in GARBAGE:
        world.refused(token, "access_token.malformed")
    world.client.sign_in()
    id_token = world.client.session().id_token
    assert id_token is not None
    discovery, jwks = world.requests("discovery"), world.requests("jwks")  # the client's
    world.refused(id_token, "access_token.typ_not_allowed")
    unsigned = sign({"alg": "none", "typ": "at+jwt"}, at_claims())
    world.refused(unsigned, "access_token.alg_not_allowed")
    assert (world.requests("discovery"), world.requests("jwks")) == (discovery, jwks)


def test_the_header_is_read_then_the_token_verified(world: World) -> None:
    token = world.m2m_token(scopes=["read"])
    assert world.verify_header(f"bearer  {token} ", ["read"]).sub == M2M
    middle = token.rindex(".") + 10
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    for header, code in [
        (None, "bearer.missing"),
        (f"Basic {token}", "bearer.other_scheme"),
        (f"Bearer {token} {token}", "bearer.malformed"),
        (f"Bearer {tampered}", "access_token.bad_signature"),
    ]:
        with pytest.raises(AccessTokenError) as caught:
            world.verify_header(header)
        assert caught.value.code == code
        assert_no_token_shown(caught.value, token)


def test_errors_name_the_policy_s_realm() -> None:
    world = World(realm="orders")
    with pytest.raises(AccessTokenError) as missing:
        world.verify_header(None)
    assert missing.value.www_authenticate() == 'Bearer realm="orders"'
    with pytest.raises(AccessTokenError) as scope:
        world.verify(world.m2m_token(), ["admin"])
    assert scope.value.www_authenticate().startswith(
        'Bearer realm="orders", error="insufficient_scope"'
    )


def test_a_provider_out_of_reach_is_not_the_caller_s_fault(world: World) -> None:
    token = world.m2m_token()
    world.fail.append(TransportError("refused", code="transport.connect"))
    with pytest.raises(TransportError):
        world.verify(token)
    assert world.verify(token).sub == M2M  # nothing bad was remembered
