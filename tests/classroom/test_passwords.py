"""Argon2id hashing of lesson passwords, and no enumeration by timing."""

from __future__ import annotations

import asyncio
import unicodedata

import argon2
import pytest

from classroom.errors import ClassroomError
from classroom.passwords import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PRODUCTION_PARAMETERS,
    PasswordHasher,
)
from tests.classroom.support import FAST_ARGON2, PASSWORD


def test_production_parameters_meet_the_security_floor() -> None:
    assert PRODUCTION_PARAMETERS.memory_kib >= 19 * 1024
    assert PRODUCTION_PARAMETERS.time_cost >= 2
    assert PRODUCTION_PARAMETERS.salt_len >= 16
    assert PasswordHasher().parameters == PRODUCTION_PARAMETERS


async def test_production_hash_is_argon2id_with_the_stated_parameters() -> None:
    encoded = await PasswordHasher().hash(PASSWORD)
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    parameters = argon2.extract_parameters(encoded)
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 19 * 1024
    assert parameters.time_cost >= 2
    assert PASSWORD not in encoded


async def test_hash_verifies_and_is_salted(hasher: PasswordHasher) -> None:
    first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)
    assert first != second
    assert await hasher.verify(first, PASSWORD)
    assert not await hasher.verify(first, PASSWORD + "x")


@pytest.mark.parametrize(
    "password",
    [
        "",
        "short",
        "x" * (MIN_PASSWORD_LENGTH - 1),
        "y" * (MAX_PASSWORD_LENGTH + 1),
        "ab\ud800cdefgh",
    ],
    ids=["empty", "short", "one-too-short", "one-too-long", "lone-surrogate"],
)
async def test_weak_passwords_are_refused_without_echoing_them(
    hasher: PasswordHasher, password: str
) -> None:
    with pytest.raises(ClassroomError) as refused:
        await hasher.hash(password)
    assert refused.value.code == "weak_password"
    if password:
        assert password not in str(refused.value)
        assert password not in repr(refused.value)


@pytest.mark.parametrize("length", [MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH])
async def test_length_bounds_are_inclusive(hasher: PasswordHasher, length: int) -> None:
    password = "p" * length
    assert await hasher.verify(await hasher.hash(password), password)


async def test_composed_and_decomposed_vietnamese_are_the_same_password(
    hasher: PasswordHasher,
) -> None:
    composed = unicodedata.normalize("NFC", "Tiếng Việt 2025")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert await hasher.verify(await hasher.hash(composed), decomposed)


async def test_nothing_to_compare_with_is_never_a_match(hasher: PasswordHasher) -> None:
    assert not await hasher.verify(None, PASSWORD)
    assert not await hasher.verify(None, "")


async def test_candidates_that_cannot_be_passwords_are_false_not_errors(
    hasher: PasswordHasher,
) -> None:
    encoded = await hasher.hash("p" * MAX_PASSWORD_LENGTH)
    assert not await hasher.verify(encoded, "p" * MAX_PASSWORD_LENGTH + "q")
    assert not await hasher.verify(encoded, "\ud800" * 10)
    assert not await hasher.verify("not an argon2 hash", PASSWORD)


async def test_dummy_hash_costs_the_same_as_a_real_one() -> None:
    """Timing is proven by construction, not by a stopwatch: an unknown lesson verifies a hash
    made with exactly the parameters of real ones."""
    verified: list[str] = []

    class Recording(PasswordHasher):
        def _verify(self, encoded_hash: str, candidate: bytes) -> bool:
            verified.append(encoded_hash)
            return super()._verify(encoded_hash, candidate)

    hasher = Recording(FAST_ARGON2)
    real = await hasher.hash(PASSWORD)
    await hasher.verify(None, PASSWORD)
    (dummy,) = verified
    assert dummy != real
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(real)


async def test_hashing_does_not_block_the_event_loop() -> None:
    """While a production-cost hash (tens of ms) runs, other coroutines keep running."""
    hasher = PasswordHasher()
    hashing = asyncio.ensure_future(hasher.hash(PASSWORD))
    turns = 0
    while not hashing.done():
        await asyncio.sleep(0)
        turns += 1
    await hashing
    assert turns > 1
