"""PKCE verifier/challenge and the random state and nonce values."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import LogtoError, LogtoUsageError
from logto_core.protocol.pkce import (
    RANDOM_BYTES,
    UNRESERVED_CHARACTERS,
    code_challenge_s256,
    generate_code_verifier,
    generate_nonce,
    generate_state,
    is_valid_code_verifier,
)
from logto_core.runtime import Runtime

# RFC 7636 appendix B: the 32 octets, the verifier they encode to, and its S256 challenge.
RFC_OCTETS = bytes(
    [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
     22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
)  # fmt: skip
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def fixed_runtime(data: bytes) -> Runtime:
    return Runtime(clock=lambda: 0.0, entropy=lambda n: data[:n])


def test_rfc7636_appendix_b_challenge() -> None:
    assert code_challenge_s256(RFC_VERIFIER) == RFC_CHALLENGE


def test_rfc7636_appendix_b_verifier_from_octets() -> None:
    assert generate_code_verifier(fixed_runtime(RFC_OCTETS)) == RFC_VERIFIER


def test_generated_values_use_32_bytes_and_are_43_chars() -> None:
    requested: list[int] = []

    def entropy(n: int) -> bytes:
        requested.append(n)
        return bytes(range(n))

    runtime = Runtime(entropy=entropy)
    for generate in (generate_code_verifier, generate_state, generate_nonce):
        value = generate(runtime)
        assert len(value) == 43
        assert "=" not in value
    assert requested == [RANDOM_BYTES] * 3
    assert RANDOM_BYTES == 32


def test_system_runtime_gives_distinct_values() -> None:
    runtime = Runtime()
    values = {generate_state(runtime) for _ in range(20)}
    assert len(values) == 20


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "a" * 42,
        "a" * 129,
        "a" * 42 + "=",
        "a" * 42 + " ",
        "a" * 42 + "é",
        "a" * 42 + "+",
        "a" * 42 + "/",
    ],
)
def test_invalid_verifier_refused_without_echo(verifier: str) -> None:
    with pytest.raises(LogtoUsageError) as info:
        code_challenge_s256(verifier)
    assert info.value.code == "pkce.invalid_verifier"
    if verifier:
        assert verifier not in str(info.value)
        assert verifier not in repr(info.value)


def test_non_string_verifier_refused() -> None:
    with pytest.raises(LogtoUsageError):
        code_challenge_s256(b"a" * 43)  # type: ignore[arg-type]
    assert not is_valid_code_verifier(None)


@pytest.mark.parametrize("length", [43, 128])
def test_boundary_lengths_accepted(length: int) -> None:
    verifier = ("-._~" + "Az09") * 32
    challenge = code_challenge_s256(verifier[:length])
    assert len(challenge) == 43


def test_short_entropy_becomes_usage_error() -> None:
    runtime = Runtime(entropy=lambda n: b"\x00" * (n - 1))
    with pytest.raises(LogtoUsageError) as info:
        generate_code_verifier(runtime)
    assert info.value.code == "runtime.entropy"


def test_non_bytes_entropy_becomes_usage_error() -> None:
    runtime = Runtime(entropy=lambda n: "x" * n)  # type: ignore[arg-type,return-value]
    with pytest.raises(LogtoError) as info:
        generate_nonce(runtime)
    assert info.value.code == "runtime.entropy"


@settings(max_examples=200)
@given(st.binary(min_size=32, max_size=32))
def test_property_verifier_alphabet_and_length(data: bytes) -> None:
    runtime = fixed_runtime(data)
    verifier = generate_code_verifier(runtime)
    assert len(verifier) == 43
    assert set(verifier) <= UNRESERVED_CHARACTERS
    assert is_valid_code_verifier(verifier)
    # The verifier encodes all 256 bits: decoding gives the entropy back.
    assert base64.urlsafe_b64decode(verifier + "=") == data
    for other in (generate_state(runtime), generate_nonce(runtime)):
        assert other == verifier  # same entropy, same encoding


@settings(max_examples=200)
@given(st.text(alphabet="".join(sorted(UNRESERVED_CHARACTERS)), min_size=43, max_size=128))
def test_property_challenge_is_s256(verifier: str) -> None:
    expected = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    challenge = code_challenge_s256(verifier)
    assert challenge == expected
    assert len(challenge) == 43
    assert set(challenge) <= UNRESERVED_CHARACTERS


@settings(max_examples=200)
@given(st.text(max_size=140))
def test_property_any_text_is_challenge_or_usage_error(verifier: str) -> None:
    valid = 43 <= len(verifier) <= 128 and set(verifier) <= UNRESERVED_CHARACTERS
    try:
        code_challenge_s256(verifier)
    except LogtoUsageError:
        assert not valid
    else:
        assert valid
