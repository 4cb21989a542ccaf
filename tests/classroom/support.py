"""Values and test doubles shared by the classroom tests."""

from __future__ import annotations

from classroom.passwords import Argon2Parameters, PasswordHasher

# Argon2's minimum cost: the tests are about behaviour, and one test pins the production
# parameters separately.
FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1)

PASSWORD = "mật khẩu lớp 5A"
NAME = "Nguyễn Văn An"


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingHasher(PasswordHasher):
    """Remembers what each verification compared against (``None`` = the dummy hash), so tests
    can prove every refusal costs exactly one Argon2 verification without timing anything."""

    def __init__(self, parameters: Argon2Parameters = FAST_ARGON2) -> None:
        super().__init__(parameters)
        self.verified: list[str | None] = []

    async def verify(self, encoded_hash: str | None, password: str) -> bool:
        self.verified.append(encoded_hash)
        return await super().verify(encoded_hash, password)
