"""JWT tickets as a user sees them: `JwtIssuer` mints tokens, `Jwt` checks
them (mosaik's rules, collections spec B.2) and names mosaik's validator
signature. The same behaviour against the real crate is in
`tests/interop/test_interop_tickets.py`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import mosaik
from mosaik import _mosaik

PEER = bytes(range(32)).hex()
OTHER_PEER = "ff" * 32
SECRET = bytes([0xAB] * 32)
ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "ES384", "ES512", "EdDSA")
#: The spec's worked vector (B.2): HS256, secret [0xAB; 32].
VECTOR = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJteS1hcHAiLCJzdWIiOiIwMDAxMDIwMzA0MDUwNjA3"
    "MDgwOTBhMGIwYzBkMGUwZjEwMTExMjEzMTQxNTE2MTcxODE5MWExYjFjMWQxZTFmIiwiZXhwIjoxNzAwMDAzNjAwLC"
    "JpYXQiOjE3MDAwMDAwMDB9.NEJ5_w2Am_avUcBvht53qfYH6N0U7OhP5TkCbp2k6kI"
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(claims: dict[str, Any], header: str = '{"alg":"HS256","typ":"JWT"}') -> str:
    """A token signed with SECRET whose claims are exactly `claims`."""
    signing_input = f"{b64(header.encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def refusal(jwt: mosaik.Jwt, token: str, peer_id: str = PEER) -> str:
    with pytest.raises(ValueError) as refused:
        jwt.validate(token, peer_id)
    return str(refused.value)


def test_the_spec_vector_is_issued_byte_for_byte() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET, issuer="my-app")
    token = issuer.issue(subject=PEER, issued_at=1_700_000_000, expires_at=1_700_003_600)
    assert token == VECTOR
    signature = mosaik.Jwt.hs256(SECRET, issuers=("my-app",)).signature
    assert signature.startswith("c0203d61") and signature.endswith("ae912252")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tokens_round_trip_for_every_algorithm(algorithm: str) -> None:
    issuer = mosaik.JwtIssuer.generate(algorithm, issuer="auth")  # type: ignore[arg-type]
    assert issuer.algorithm == algorithm
    assert (issuer.public_key is None) == algorithm.startswith("HS")
    key = issuer.public_key if issuer.public_key is not None else issuer.private_key
    jwt = mosaik.Jwt(keys=[(algorithm, key)], issuers=["auth"])  # type: ignore[list-item]
    token = issuer.issue(subject=PEER, expires_in=60, claims={"role": "writer"})
    expiry = jwt.validate(token, PEER)
    assert expiry is not None and abs(expiry - (time.time() + 60)) < 3
    assert issuer.validator(issuers=["auth"]).signature == jwt.signature
    # The same key bytes rebuild the same issuer.
    again = getattr(mosaik.JwtIssuer, algorithm.lower())(issuer.private_key, issuer="auth")
    assert again.public_key == issuer.public_key
    assert jwt.validate(again.issue(subject=PEER, expires_in=60), PEER) is not None


def test_a_token_without_expiry_needs_allow_non_expiring() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET)
    token = issuer.issue(subject=PEER)
    assert "no exp" in refusal(mosaik.Jwt.hs256(SECRET), token)
    assert mosaik.Jwt.hs256(SECRET, allow_non_expiring=True).validate(token, PEER) is None


def test_each_refusal_reason_surfaces() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET, issuer="auth")
    now = int(time.time())
    good = issuer.issue(subject=PEER, expires_in=600, audience="api", claims={"role": "writer"})
    plain = mosaik.Jwt.hs256(SECRET)
    assert plain.validate(good, PEER) is not None
    cases: list[tuple[mosaik.Jwt, str, str]] = [
        (plain, "x" * 9000, "longer than"),
        (plain, "a.b", "three dot-separated parts"),
        (plain, good.replace(".", "=.", 1), "header is not base64url"),
        (plain, hs256_token({}, header='{"alg":"none"}'), 'no key for algorithm "none"'),
        (mosaik.Jwt.hs384(bytes(48)), good, 'no key for algorithm "HS256"'),
        (mosaik.Jwt.hs256(bytes(32)), good, "bad signature"),
        (plain, hs256_token({"sub": PEER, "exp": float(now + 60)}), "claims are not"),
        (plain, hs256_token({"sub": PEER, "aud": ["api"], "exp": now + 60}), "claims are not"),
        (mosaik.Jwt.hs256(SECRET, issuers=["other"]), good, "issuer not allowed"),
        (plain, issuer.issue(subject=OTHER_PEER, expires_in=60), "subject does not match"),
        (plain, issuer.issue(subject=PEER, expires_in=60, not_before=now + 100), "nbf"),
        (plain, issuer.issue(subject=PEER, expires_at=now - 1), "expired"),
        (mosaik.Jwt.hs256(SECRET, max_lifetime=60), good, "max_lifetime"),
        (
            mosaik.Jwt.hs256(SECRET, max_age=60),
            hs256_token({"sub": PEER, "exp": now + 60}),
            "no iat",
        ),
        (
            mosaik.Jwt.hs256(SECRET, max_age=60),
            issuer.issue(subject=PEER, expires_in=60, issued_at=now - 120),
            "older than max_age",
        ),
        (mosaik.Jwt.hs256(SECRET, audiences=["other"]), good, "audience not allowed"),
        (mosaik.Jwt.hs256(SECRET, claims={"role": "reader"}), good, 'claim "role"'),
        (plain, hs256_token({"sub": PEER, "exp": 2**63}), "beyond representable time"),
    ]
    for jwt, token, reason in cases:
        assert reason in refusal(jwt, token), reason


def test_a_subject_other_than_the_peer_id_can_be_required() -> None:
    token = mosaik.JwtIssuer.hs256(SECRET).issue(subject="service-a", expires_in=60)
    assert "subject does not match" in refusal(mosaik.Jwt.hs256(SECRET), token)
    assert mosaik.Jwt.hs256(SECRET, subject="service-a").validate(token, OTHER_PEER) is not None


def test_custom_claims_compare_as_json() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET)
    token = issuer.issue(
        subject=PEER, expires_in=60, claims={"n": 1, "tags": ["a", "b"], "meta": {"x": None}}
    )
    exact = mosaik.Jwt.hs256(SECRET, claims={"n": 1, "tags": ("a", "b"), "meta": {"x": None}})
    assert exact.validate(token, PEER) is not None
    assert 'claim "n"' in refusal(mosaik.Jwt.hs256(SECRET, claims={"n": 1.0}), token)


def test_rotation_accepts_the_old_and_the_new_key() -> None:
    old, new = mosaik.JwtIssuer.generate("EdDSA"), mosaik.JwtIssuer.generate("ES256")
    stranger = mosaik.JwtIssuer.generate("EdDSA")
    assert old.public_key is not None and new.public_key is not None
    jwt = mosaik.Jwt(keys=[("EdDSA", old.public_key), ("ES256", new.public_key)])
    assert jwt.algorithms == ["EdDSA", "ES256"]
    for issuer in (old, new):
        assert jwt.validate(issuer.issue(subject=PEER, expires_in=60), PEER) is not None
    assert "bad signature" in refusal(jwt, stranger.issue(subject=PEER, expires_in=60))


def test_the_signature_is_stable_and_changes_with_each_option() -> None:
    def jwt(**options: Any) -> mosaik.Jwt:
        return mosaik.Jwt.hs256(SECRET, **options)

    assert jwt().signature == jwt().signature == jwt(issuers=()).signature
    assert len(jwt().signature) == 64
    variants = [
        jwt(),
        mosaik.Jwt.hs256(bytes(32)),
        mosaik.Jwt(keys=[("HS256", SECRET), ("HS256", bytes(32))]),
        jwt(issuers=["a"]),
        jwt(issuers=["a", "b"]),
        jwt(audiences=["a"]),
        jwt(subject="a"),
        jwt(allow_non_expiring=True),
        jwt(max_lifetime=60),
        jwt(max_age=60),
        jwt(claims={"role": "writer"}),
        jwt(claims={"role": 1}),
    ]
    assert len({v.signature for v in variants}) == len(variants)
    assert jwt().class_id == mosaik.id_of("mosaik.tickets.jwt.v1").hex()
    assert _mosaik._ticket_signatures(None) == []
    assert _mosaik._ticket_signatures(variants[1]) == [variants[1].signature]
    assert _mosaik._ticket_signatures(variants[:3]) == [v.signature for v in variants[:3]]


def test_times_take_aware_datetimes_and_int_seconds() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET)
    at = datetime.now(timezone.utc) + timedelta(minutes=5)
    token = issuer.issue(subject=PEER, expires_at=at)
    assert mosaik.Jwt.hs256(SECRET).validate(token, PEER) == int(at.timestamp())
    with pytest.raises(ValueError, match="^expires_at: must be a timezone-aware"):
        issuer.issue(subject=PEER, expires_at=datetime.now())
    with pytest.raises(ValueError, match="^expires_in: give expires_in or expires_at"):
        issuer.issue(subject=PEER, expires_in=5, expires_at=at)


def test_bad_arguments_raise_naming_the_argument() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET)
    bad: list[tuple[Any, type[Exception], str]] = [
        (lambda: mosaik.Jwt.hs256(SECRET[:31]), ValueError, "key: HS256 secret must be 32 bytes"),
        (lambda: mosaik.Jwt.es256(bytes(33)), ValueError, "key: ES256 public key"),
        (lambda: mosaik.Jwt.eddsa("00" * 32), TypeError, "key: expected bytes"),
        (lambda: mosaik.Jwt(keys=[("RS256", SECRET)]), ValueError, "keys: unknown JWT algorithm"),
        (lambda: mosaik.Jwt(keys=[]), ValueError, "keys: at least one key"),
        (lambda: mosaik.Jwt(keys="HS256"), TypeError, "keys: expected"),
        (lambda: mosaik.Jwt.hs256(SECRET, issuers="auth"), TypeError, "issuers: expected"),
        (lambda: mosaik.Jwt.hs256(SECRET, issuers=[1]), TypeError, "issuers item: expected str"),
        (lambda: mosaik.Jwt.hs256(SECRET, max_age=-1), ValueError, "max_age: must be"),
        (lambda: mosaik.Jwt.hs256(SECRET, max_age=1e30), ValueError, "max_age: too long"),
        (lambda: issuer.issue(subject=PEER, expires_in=1e30), ValueError, "expires_in: too long"),
        (lambda: mosaik.Jwt.hs256(SECRET, max_lifetime="1"), TypeError, "max_lifetime: expected"),
        (lambda: mosaik.Jwt.hs256(SECRET, claims=[1]), TypeError, "claims: expected a mapping"),
        (lambda: mosaik.Jwt.hs256(SECRET, claims={"x": object()}), TypeError, "claims"),
        (lambda: mosaik.Jwt.hs256(SECRET, claims={"x": float("nan")}), ValueError, "claims"),
        (lambda: mosaik.JwtIssuer.es512(bytes(66)), ValueError, "private_key: ES512 private key"),
        (lambda: mosaik.JwtIssuer.hs256(bytearray(5)), ValueError, "secret: HS256 secret"),
        (lambda: mosaik.JwtIssuer.generate("HS1"), ValueError, "algorithm: unknown"),
        (lambda: issuer.issue(subject=b"x"), TypeError, "subject: expected str"),
        (lambda: issuer.issue(subject=PEER, expires_in=-1), ValueError, "expires_in: must be"),
        (lambda: issuer.issue(subject=PEER, not_before=-5), ValueError, "not_before: must be"),
        (lambda: issuer.issue(subject=PEER, issued_at="now"), TypeError, "issued_at: expected"),
        (lambda: issuer.issue(subject=PEER, claims={"exp": 1}), ValueError, "claims:"),
        (lambda: issuer.issue(subject=PEER, claims={1: 1}), TypeError, "claims key: expected str"),
        (lambda: mosaik.Jwt.hs256(SECRET).validate("a.b.c", "x"), ValueError, "peer_id: expected"),
        (lambda: _mosaik._ticket_signatures("jwt"), TypeError, "require_ticket: expected"),
        (lambda: _mosaik._ticket_signatures([issuer]), TypeError, "require_ticket item: expected"),
    ]
    for call, error, message in bad:
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value).startswith(message), (message, str(raised.value))


def test_keys_may_be_any_bytes_like_object() -> None:
    token = mosaik.JwtIssuer.hs256(bytearray(SECRET)).issue(subject=PEER, expires_in=60)
    assert mosaik.Jwt.hs256(memoryview(SECRET)).validate(token, PEER) is not None


def test_a_huge_token_is_refused_quickly() -> None:
    huge = "a" * 1_000_000 + "." + "b" * 1000 + ".c"
    started = time.monotonic()
    for _ in range(100):
        assert "longer than" in refusal(mosaik.Jwt.hs256(SECRET), huge)
    assert time.monotonic() - started < 1.0


def test_reprs_say_what_they_are() -> None:
    assert repr(mosaik.JwtIssuer.hs256(SECRET, issuer="auth")) == '<JwtIssuer HS256 issuer="auth">'
    assert repr(mosaik.Jwt.hs256(SECRET)).startswith("<Jwt HS256 ")
