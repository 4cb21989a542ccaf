"""Lesson passwords: Argon2id hashes, computed off the event loop.

Why these choices:

* **Argon2id, m = 19 MiB (19456 KiB), t = 2, p = 1, 16-byte salt, 32-byte hash.** This is
  OWASP's recommended minimum configuration (at least 19 MiB and 2 iterations). A lesson
  password is a short shared secret whose real protection against guessing is the failure
  limiter; the hash only has to make a stolen database expensive to crack. Going higher costs
  every student at 08:00: sixty joins at once means sixty hashes in a few seconds, each
  holding its memory while it runs. About 35 ms per hash on one core.
* **Hashing runs in a worker thread** (``asyncio.to_thread``) so the event loop that forwards
  media and answers signaling never stalls. At most ``max_concurrent`` hashes run at once
  (default: one per CPU). That caps the memory a join storm can use and leaves threads in the
  default executor for everything else that uses it (DNS lookups, other ``to_thread`` calls).
* **Passwords are NFC-normalised** before hashing and verifying. Vietnamese keyboards may send
  "ễ" as one code point or as a letter plus combining marks, and a student must still get in
  (RFC 8265 OpaqueString does the same). Length is counted in code points after
  normalisation: 8 to 256.
* **A dummy hash** with the same parameters is verified when there is no real hash to check
  (unknown lesson code), so a wrong code takes as long as a wrong password (no enumeration
  by timing).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from classroom.errors import ClassroomError

MIN_PASSWORD_LENGTH: Final = 8
MAX_PASSWORD_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost parameters. The defaults are the production ones; only tests lower them."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16


PRODUCTION_PARAMETERS: Final = Argon2Parameters()


class PasswordHasher:
    """Hash new lesson passwords and verify candidates, never blocking the event loop."""

    def __init__(
        self,
        parameters: Argon2Parameters = PRODUCTION_PARAMETERS,
        *,
        max_concurrent: int | None = None,
    ) -> None:
        self.parameters = parameters
        self._argon2 = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
            type=argon2.Type.ID,
        )
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 1)
        # Made once, here, with this hasher's own parameters (verification time depends on
        # them). Made eagerly because a lazy first one would make the first unknown-code
        # attempt slower than every wrong password. Costs one hash (~35 ms) at start-up.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        """Return the encoded Argon2id hash of a new password.

        Raises ``weak_password`` when the password is shorter than 8 or longer than 256
        characters; the check lives here so that no caller can hash an unchecked password.
        """
        normalised = _normalise(password)
        length_ok = MIN_PASSWORD_LENGTH <= len(normalised) <= MAX_PASSWORD_LENGTH
        if not length_ok or _has_surrogate(normalised):
            raise ClassroomError.weak_password(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH)
        async with self._slots:
            return await asyncio.to_thread(self._argon2.hash, _encode(normalised))

    async def verify(self, encoded_hash: str | None, password: str) -> bool:
        """True when ``password`` matches ``encoded_hash``.

        With ``encoded_hash=None`` (nothing to compare with) a dummy hash is verified instead
        and the answer is False, so the caller's timing does not reveal that there was nothing.
        A candidate longer than any accepted password cannot match; it is cut to that length
        before hashing so that huge inputs cost no more than normal ones.
        """
        normalised = _normalise(password)
        too_long = len(normalised) > MAX_PASSWORD_LENGTH
        candidate = _encode(normalised[: MAX_PASSWORD_LENGTH + 1])
        target = encoded_hash if encoded_hash is not None else self._dummy_hash
        async with self._slots:
            matches = await asyncio.to_thread(self._verify, target, candidate)
        return matches and encoded_hash is not None and not too_long

    def _verify(self, encoded_hash: str, candidate: bytes) -> bool:
        try:
            return self._argon2.verify(encoded_hash, candidate)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


def _has_surrogate(text: str) -> bool:
    """Lone surrogates (possible in JSON: "\\ud800") are not text; no new password has one."""
    return any("\ud800" <= char <= "\udfff" for char in text)


def _encode(password: str) -> bytes:
    """UTF-8, letting a candidate with lone surrogates through as bytes that match nothing.

    A plain ``encode()`` would raise on them and turn a bad guess into a server error.
    """
    return password.encode("utf-8", "surrogatepass")


def token_digest(token: str) -> str:
    """SHA-256 hex of a random token (teacher tokens, login sessions, resume tokens).

    Tokens carry 256 random bits, so unlike a human-chosen password they need no salt or
    stretching; a plain digest stores nothing usable and still allows lookups by token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
