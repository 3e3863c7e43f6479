"""JWT tickets against the real mosaik 0.3.13 crate: the same tokens for
the same inputs, each side's tokens accepted by the other, the same
accept/refuse answer on hostile tokens, and the same validator signatures
(which gated group ids are made of). The crate runs in the reference peer
(`tests/interop/src/tickets.rs`), no node needed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

import mosaik

from reference_peer import ReferencePeer

#: A valid Ed25519 peer id (seed 00..1f), as in test_interop_vectors.py.
PEER = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "ES384", "ES512", "EdDSA")
#: p521 0.13 signs with a random nonce, in mosaik too: ES512 tokens differ.
DETERMINISTIC = tuple(alg for alg in ALGORITHMS if alg != "ES512")
SECRET = bytes([0xAB] * 32)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verifying_key(issuer: mosaik.JwtIssuer) -> bytes:
    return issuer.public_key if issuer.public_key is not None else issuer.private_key


def ours(config: dict[str, Any]) -> mosaik.Jwt:
    """Our validator for a reference-peer `config`."""
    return mosaik.Jwt(
        keys=[(alg, bytes.fromhex(key)) for alg, key in config["keys"]],
        issuers=config.get("issuers"),
        audiences=config.get("audiences"),
        subject=config.get("subject"),
        allow_non_expiring=config.get("allow_non_expiring", False),
        max_lifetime=config.get("max_lifetime"),
        max_age=config.get("max_age"),
        claims=config.get("claims"),
    )


def our_answer(config: dict[str, Any], token: str) -> tuple[bool, float | None]:
    try:
        return True, ours(config).validate(token, PEER)
    except ValueError:
        return False, None


async def crate_answer(
    peer: ReferencePeer, config: dict[str, Any], token: str
) -> tuple[bool, float | None]:
    answer = await peer.ask(
        {"cmd": "jwt_validate", "config": config, "token": token, "peer_id": PEER}
    )
    expiration = answer.get("expiration")
    return answer["valid"], None if expiration is None else float(expiration)


def hs256_token(claims_json: str, header_json: str = '{"alg":"HS256","typ":"JWT"}') -> str:
    """A token signed with SECRET carrying exactly these header and claims texts."""
    signing_input = f"{b64(header_json.encode())}.{b64(claims_json.encode())}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_tokens_match_the_crate_and_validate_both_ways(
    reference_peer: ReferencePeer, algorithm: str
) -> None:
    issuer = mosaik.JwtIssuer.generate(algorithm, issuer="auth")  # type: ignore[arg-type]
    now = int(time.time())
    claims = {"role": "writer", "n": 7, "f": 1.5, "nested": {"b": [1, None], "a": True}}
    ours_token = issuer.issue(
        subject=PEER,
        issued_at=now - 5,
        not_before=now - 10,
        expires_at=now + 600,
        audience="api",
        jwt_id="t-1",
        claims=claims,
    )
    crate = await reference_peer.ask(
        {
            "cmd": "jwt_issue",
            "alg": algorithm,
            "key": issuer.private_key.hex(),
            "peer_id": PEER,
            "issuer": "auth",
            "audience": "api",
            "jti": "t-1",
            "issued_at": now - 5,
            "not_before": now - 10,
            "exp": now + 600,
            "claims": claims,
        }
    )
    if algorithm in DETERMINISTIC:
        assert ours_token == crate["token"]
    else:
        assert ours_token != crate["token"]
        # Everything but the signature is the same.
        assert ours_token.rsplit(".", 1)[0] == crate["token"].rsplit(".", 1)[0]
    config = {
        "keys": [[algorithm, verifying_key(issuer).hex()]],
        "issuers": ["auth"],
        "audiences": ["api"],
        "max_lifetime": 3600,
        "max_age": 60,
        "claims": claims,
    }
    for token in (ours_token, crate["token"]):
        assert await crate_answer(reference_peer, config, token) == (True, float(now + 600))
        assert our_answer(config, token) == (True, float(now + 600))


async def test_a_token_without_subject_override_names_the_peer(
    reference_peer: ReferencePeer,
) -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET)
    crate = await reference_peer.ask(
        {"cmd": "jwt_issue", "alg": "HS256", "key": SECRET.hex(), "peer_id": PEER, "issued_at": 1}
    )
    # mosaik's builder defaults `sub` to the peer id in lowercase hex and
    # omits `exp` for a non-expiring ticket.
    assert crate["token"] == issuer.issue(subject=PEER, issued_at=1)
    config = {"keys": [["HS256", SECRET.hex()]], "allow_non_expiring": True}
    assert await crate_answer(reference_peer, config, crate["token"]) == (True, None)


async def test_rotation_is_tried_in_both(reference_peer: ReferencePeer) -> None:
    old, new = mosaik.JwtIssuer.generate("EdDSA"), mosaik.JwtIssuer.generate("ES384")
    stranger = mosaik.JwtIssuer.generate("EdDSA")
    config = {
        "keys": [["EdDSA", verifying_key(old).hex()], ["ES384", verifying_key(new).hex()]],
    }
    expires = int(time.time()) + 60
    for issuer, accepted in ((old, True), (new, True), (stranger, False)):
        token = issuer.issue(subject=PEER, expires_at=expires)
        expected = (True, float(expires)) if accepted else (False, None)
        assert await crate_answer(reference_peer, config, token) == expected
        assert our_answer(config, token) == expected


async def test_hostile_tokens_get_the_crates_answer(reference_peer: ReferencePeer) -> None:
    now = int(time.time())
    body = json.dumps({"sub": PEER, "exp": now + 60})
    good = hs256_token(body)
    header, claims, signature = good.split(".")
    tokens = [
        good,
        hs256_token(json.dumps({"sub": PEER, "exp": None})),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60.0})),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60, "nbf": -1})),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60, "iat": 2**64})),
        hs256_token(json.dumps({"sub": PEER, "exp": 2**63})),
        hs256_token(json.dumps({"sub": PEER, "exp": 2**64 - 1})),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60, "aud": ["api"]})),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60, "iss": 5})),
        hs256_token(json.dumps({"sub": PEER.upper(), "exp": now + 60})),
        hs256_token(f'{{"sub":"{PEER}","sub":"{PEER}","exp":{now + 60}}}'),
        hs256_token(f'{{"sub":"{PEER}","exp":{now + 60},"x":1,"x":2}}'),
        hs256_token(f' {{"sub":"{PEER}","exp":{now + 60}}} '),
        hs256_token(f'{{"sub":"{PEER}","exp":{now + 60}}}x'),
        hs256_token(json.dumps([PEER])),
        hs256_token(
            json.dumps({"sub": PEER, "exp": now + 60}), '{"typ":"x","alg":"HS256","k":[1]}'
        ),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60}), '{"alg":"hs256"}'),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60}), '{"alg":"none"}'),
        hs256_token(json.dumps({"sub": PEER, "exp": now + 60}), '{"alg":["HS256"]}'),
        f"{header}.{claims}",
        f"{header}.{claims}.",
        f"{header}.{claims}.{signature}.",
        f"{header}.{claims}.{signature}x",
        f"{header}.{claims}.{signature[:-1]}",
        f"{header}.{claims}." + b64(b"\x00" * 32),
        f"{header}.{claims}.{signature.replace('-', '+').replace('_', '/')}",
        "",
        "..",
        "\u00e9.\u00e9.\u00e9",
    ]
    config = {"keys": [["HS256", SECRET.hex()]]}
    for token in tokens:
        assert our_answer(config, token) == await crate_answer(reference_peer, config, token), token


async def test_base64_padding(reference_peer: ReferencePeer) -> None:
    """Padded parts: mosaik decodes with base64 0.13, which accepts `=`
    padding; we refuse it (mosaik never emits it). The difference is
    recorded here so that a change on either side is noticed."""
    now = int(time.time())
    claims = json.dumps({"sub": PEER, "exp": now + 60, "pad": "x"})
    padded_claims = base64.urlsafe_b64encode(claims.encode()).decode()
    assert padded_claims.endswith("=")
    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    signing_input = f"{header}.{padded_claims}"
    signature = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    config = {"keys": [["HS256", SECRET.hex()]]}
    crate = await crate_answer(reference_peer, config, token)
    print("mosaik on a padded claims part:", crate)
    assert our_answer(config, token) == (False, None)
    assert crate == (True, float(now + 60))


CONFIGS: list[dict[str, Any]] = [
    {"keys": [["HS256", SECRET.hex()]], "issuers": ["my-app"]},
    {"keys": [["HS384", "01" * 48], ["HS512", "02" * 64]]},
    {"keys": [["HS256", SECRET.hex()]], "allow_non_expiring": True, "subject": "svc"},
    {"keys": [["HS256", SECRET.hex()]], "issuers": ["a", "b"], "audiences": ["x", "y"]},
    {"keys": [["HS256", SECRET.hex()]], "max_lifetime": 3600, "max_age": 60},
    {
        "keys": [["HS256", SECRET.hex()]],
        "claims": {"role": "writer", "n": 1, "f": 1.0, "big": 1e20, "o": {"z": 1, "a": [True]}},
    },
]


async def test_validator_signatures_match_the_crate(reference_peer: ReferencePeer) -> None:
    es = [mosaik.JwtIssuer.generate(alg) for alg in ("ES256", "ES384", "ES512", "EdDSA")]  # type: ignore[arg-type]
    rotation = {"keys": [[issuer.algorithm, verifying_key(issuer).hex()] for issuer in es]}
    for config in [*CONFIGS, rotation]:
        crate = await reference_peer.ask({"cmd": "jwt_signature", "config": config})
        assert ours(config).signature == crate["signature"], config
    first = await reference_peer.ask({"cmd": "jwt_signature", "config": CONFIGS[0]})
    assert first["signature"].startswith("c0203d61")
