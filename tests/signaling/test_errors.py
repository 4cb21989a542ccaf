"""The stable error codes: complete against docs/protocol.md, each with a readable message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from signaling.errors import DEFAULT_MESSAGES, CloseCode, ErrorCode, SignalingError

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

# Codes the brief adds to those the protocol document names.
SIGNALING_CODES = {
    "malformed",
    "unknown_type",
    "not_authenticated",
    "message_too_big",
    "rate_limited",
    "bad_sdp",
    "unsupported_codec",
    "too_many_tracks",
    "bad_candidate",
    "no_transport",
    "too_many_candidates",
    "bad_version",
    "internal",
}


def protocol_codes() -> set[str]:
    """Every code in an ``Errors:`` paragraph or the ``on breach`` column of docs/protocol.md."""
    text = PROTOCOL.read_text(encoding="utf-8")
    codes: set[str] = set()
    for paragraph in re.findall(r"Errors:(.*?)(?:\n\n|\Z)", text, re.DOTALL):
        codes.update(re.findall(r"(?<!\+ )`([a-z_]+)`", paragraph))  # not "(+ `retry_after`)"
    limits = text[text.index("## Limits") :]
    for row in limits.splitlines()[3:]:
        codes.update(re.findall(r"`([a-z_]+)`", row.split("|")[-2]))
    codes.update(re.findall(r"close code \d+ \(`([a-z_]+)`\)", text))  # 4001 (`auth_timeout`)
    return codes


def test_the_protocol_document_is_read() -> None:
    assert {"bad_password", "lesson_full", "too_many_candidates", "auth_timeout"} <= (
        protocol_codes()
    )


def test_every_documented_code_exists() -> None:
    known = {code.value for code in ErrorCode}
    assert protocol_codes() - known == set()
    assert SIGNALING_CODES - known == set()


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_plain_message(code: ErrorCode) -> None:
    message = DEFAULT_MESSAGES[code]
    assert message and message[0].isupper() and message.endswith(".")
    assert code.value not in message  # written for people, not protocol jargon
    assert SignalingError(code).message == message


def test_codes_are_stable_snake_case() -> None:
    for code in ErrorCode:
        assert re.fullmatch(r"[a-z][a-z_]*", code.value)


def test_signaling_error_fields() -> None:
    exc = SignalingError("rate_limited", extra={"retry_after": 3}, request_id=7)
    assert exc.code is ErrorCode.RATE_LIMITED
    assert exc.message == DEFAULT_MESSAGES[ErrorCode.RATE_LIMITED]
    assert exc.extra == {"retry_after": 3}
    assert exc.request_id == 7
    assert exc.close_code is None
    assert "rate_limited" in str(exc) and "rate_limited" in repr(exc)


def test_signaling_error_refuses_a_code_that_is_not_stable() -> None:
    with pytest.raises(ValueError):
        SignalingError("oops_typo")


def test_with_request_id_copies() -> None:
    exc = SignalingError(ErrorCode.MESSAGE_TOO_BIG, "big", close_code=CloseCode.TOO_BIG)
    other = exc.with_request_id("abc")
    assert (other.code, other.message, other.close_code, other.request_id) == (
        ErrorCode.MESSAGE_TOO_BIG,
        "big",
        1009,
        "abc",
    )
    assert exc.request_id is None


def test_close_codes() -> None:
    assert (CloseCode.NORMAL, CloseCode.POLICY, CloseCode.TOO_BIG, CloseCode.AUTH_TIMEOUT) == (
        1000,
        1008,
        1009,
        4001,
    )
