"""mosaik's id rule, checked against the spec's vectors."""

from __future__ import annotations

import pytest

import mosaik


def test_network_name_is_hashed_with_blake3() -> None:
    assert (
        mosaik.id_of("demo").hex()
        == "811717648744df4f18656c5f4a833b7b09a90be78205a0e0eeff8b9dbb0202fe"
    )


def test_rust_type_name_gives_the_default_stream_id_of_string() -> None:
    assert (
        mosaik.id_of("alloc::string::String").hex()
        == "3b5a1dd4d2c82bee28a22e983905ce688284518535f3a15c8bb1c4d2bc476908"
    )


def test_tag_vector() -> None:
    assert (
        mosaik.id_of("api").hex()
        == "f5c6cf48cc480351e4f1e6845eb943c9cdff9e1ae6792dca2132186f9186f650"
    )


def test_sixty_four_hex_characters_are_the_id_itself() -> None:
    raw = bytes(range(32))
    assert mosaik.id_of(raw.hex()) == raw
    assert mosaik.id_of(raw.hex().upper()) == raw


def test_almost_hex_is_hashed() -> None:
    assert mosaik.id_of("ab" * 31 + "a") != bytes.fromhex("ab" * 31 + "a0")
    assert len(mosaik.id_of("zz" * 32)) == 32


def test_the_empty_name_is_hashed_too() -> None:
    assert (
        mosaik.id_of("").hex()
        == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # blake3("")
    )


def test_id_of_wants_a_string() -> None:
    with pytest.raises(TypeError):
        mosaik.id_of(b"demo")  # type: ignore[arg-type]
