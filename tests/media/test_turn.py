"""TURN credentials minted per participant (media/turn.py); coturn's side of them is
tests/security/test_19_turn.py."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from media.turn import TurnSettings
from web.cli import build_parser, settings_from_args

SECRET = "sixteen-chars-or-more"


def test_a_credential_names_its_expiry_and_participant_and_differs_per_participant() -> None:
    turn = TurnSettings(urls=("turns:turn.truong.vn:443?transport=tcp",), secret=SECRET, ttl=600)
    username, password = turn.credentials("p-123", 1_800_000_000.4)
    assert username == "1800000600:p-123"
    assert len(base64.b64decode(password)) == 20  # an HMAC-SHA1
    assert turn.credentials("p-456", 1_800_000_000)[1] != password
    (server,) = turn.ice_servers("p-123", 1_800_000_000.4)
    assert server == {
        "urls": ["turns:turn.truong.vn:443?transport=tcp"],
        "username": username,
        "credential": password,
    }
    assert SECRET not in repr(turn)


@pytest.mark.parametrize(
    "url",
    [
        "turn:10.0.0.2",
        "turn:10.0.0.2:3478",
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:443?transport=tcp",
        "turn:[2001:db8::1]:3478",
    ],
)
def test_turn_urls_browsers_take(url: str) -> None:
    TurnSettings(urls=(url,), secret=SECRET)


@pytest.mark.parametrize(
    "url",
    [
        "stun:turn.example.org",
        "https://turn.example.org",
        "turn:",
        "turn:host:3478?transport=sctp",
        "turn:host name",
        "turn:user@host",
    ],
)
def test_what_is_not_a_turn_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a TURN URL"):
        TurnSettings(urls=(url,), secret=SECRET)


def test_the_secret_and_lifetime_are_bounded() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TurnSettings(urls=(), secret=SECRET)
    with pytest.raises(ValueError, match="at least 16"):
        TurnSettings(urls=("turn:h",), secret="short")
    with pytest.raises(ValueError, match="lifetime"):
        TurnSettings(urls=("turn:h",), secret=SECRET, ttl=10)


def test_the_command_line_takes_the_urls_with_a_private_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)

    def settings(*extra: str) -> TurnSettings | None:
        return settings_from_args(build_parser().parse_args(["serve", *extra])).turn

    assert settings() is None
    turn = settings("--turn-url", "turn:10.0.0.2:3478", "--turn-secret-file", str(secret))
    assert turn is not None and turn.urls == ("turn:10.0.0.2:3478",) and turn.secret == SECRET
    with pytest.raises(SystemExit, match="go together"):
        settings("--turn-url", "turn:10.0.0.2:3478")
    with pytest.raises(SystemExit, match="not a TURN URL"):
        settings("--turn-url", "http://x", "--turn-secret-file", str(secret))
    with pytest.raises(SystemExit, match="cannot read"):
        settings("--turn-url", "turn:h", "--turn-secret-file", str(tmp_path / "missing"))
    secret.chmod(0o644)
    with pytest.raises(SystemExit, match="chmod 600"):
        settings("--turn-url", "turn:h", "--turn-secret-file", str(secret))
