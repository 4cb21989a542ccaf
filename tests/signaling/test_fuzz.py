"""Hypothesis: whatever a client sends, only SignalingError comes out.

Three properties, for arbitrary input and for real browser/aiortc SDP mutated line by line:

* ``parse_request``, ``check_offer``, ``check_answer`` and ``parse_candidate`` raise nothing
  but ``SignalingError`` with a stable code;
* an SDP ``check_offer`` accepts is one aiortc 1.16's own parser reads without an exception
  (the reason the guard exists);
* ``filter_candidates`` of an accepted SDP is accepted too.
"""

from __future__ import annotations

import json
from typing import Any

from aiortc.sdp import SessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.errors import ErrorCode, SignalingError
from signaling.messages import REQUEST_TYPES, Request, parse_request
from signaling.sdp_guard import (
    SdpSummary,
    check_answer,
    check_offer,
    filter_candidates,
    parse_candidate,
)
from tests.signaling.sdp_fixtures import VALID_ANSWERS, VALID_OFFERS, load

# No example database: nothing is written into the work tree, runs stay reproducible.
FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MORE = settings(FUZZ, max_examples=400)

OFFERS = [load(name) for name in VALID_OFFERS]
ANSWERS = [load(name) for name in VALID_ANSWERS]
ALL_CHARACTERS = st.characters(exclude_categories=())  # surrogates and controls included


def parse_quietly(frame: str | bytes) -> Request | SignalingError:
    try:
        return parse_request(frame)
    except SignalingError as exc:
        assert isinstance(exc.code, ErrorCode)
        assert exc.close_code in (None, 1009)
        json.dumps(exc.request_id)  # echoable
        return exc


def check_quietly(sdp: str, *, answer: bool = False) -> SdpSummary | SignalingError:
    try:
        return (check_answer if answer else check_offer)(sdp)
    except SignalingError as exc:
        assert exc.code in (
            ErrorCode.BAD_SDP,
            ErrorCode.UNSUPPORTED_CODEC,
            ErrorCode.TOO_MANY_TRACKS,
        )
        return exc


def assert_accepted_sdp_is_safe(sdp: str, *, answer: bool = False) -> None:
    result = check_quietly(sdp, answer=answer)
    if isinstance(result, SdpSummary):
        SessionDescription.parse(sdp)  # aiortc must not raise on anything the guard let in
        filtered = filter_candidates(sdp, lambda c: True)
        assert isinstance(check_quietly(filtered, answer=answer), SdpSummary)


# --- frames --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(ALL_CHARACTERS, max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

ids = st.one_of(
    st.integers(min_value=-5, max_value=2**53 + 5),
    st.text(ALL_CHARACTERS, max_size=70),
    json_values,
)
FIELDS = ["code", "password", "name", "token", "sdp", "version", "pc", "candidate"]


@st.composite
def candidate_objects(draw: st.DrawFn) -> Any:
    base = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
    line = draw(st.sampled_from([base, "", "a=" + base, base + " x"]) | st.text(max_size=60))
    value: dict[str, Any] = {"candidate": line}
    for key, strategy in [
        ("sdpMid", st.none() | st.sampled_from(["0", "1", ""]) | json_values),
        ("sdpMLineIndex", st.none() | st.integers(-2, 70000) | json_values),
        ("usernameFragment", st.none() | st.sampled_from(["Xk7q", "a b"]) | json_values),
    ]:
        if draw(st.booleans()):
            value[key] = draw(strategy)
    return value


@st.composite
def near_valid_requests(draw: st.DrawFn) -> dict[str, Any]:
    request: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        request["type"] = draw(st.sampled_from(sorted(REQUEST_TYPES)) | json_values)
    if draw(st.integers(0, 9)):
        request["id"] = draw(ids)
    for key in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=5)):
        if key == "candidate":
            request[key] = draw(st.none() | candidate_objects() | json_values)
        elif key == "pc":
            request[key] = draw(st.sampled_from(["publish", "subscribe"]) | json_values)
        elif key == "version":
            request[key] = draw(st.integers(-1, 2**53 + 1) | json_values)
        elif key == "sdp":
            request[key] = draw(st.sampled_from(OFFERS) | st.text(ALL_CHARACTERS, max_size=40))
        else:
            request[key] = draw(st.text(ALL_CHARACTERS, max_size=80) | json_values)
    return request


@FUZZ
@given(st.text(ALL_CHARACTERS))
def test_any_text_frame(frame: str) -> None:
    parse_quietly(frame)


@FUZZ
@given(st.binary())
def test_any_binary_frame(frame: bytes) -> None:
    parse_quietly(frame)


@FUZZ
@given(json_values)
def test_any_json_frame(value: Any) -> None:
    parse_quietly(json.dumps(value))
    parse_quietly(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@MORE
@given(near_valid_requests())
def test_near_valid_requests(request: dict[str, Any]) -> None:
    result = parse_quietly(json.dumps(request))
    if not isinstance(result, SignalingError):
        assert result.id == request["id"]
        assert type(result).__name__.lower() == request["type"].replace("_", "")


@FUZZ
@given(near_valid_requests(), st.integers(0, 400), st.text(ALL_CHARACTERS, max_size=5))
def test_corrupted_json(request: dict[str, Any], at: int, junk: str) -> None:
    text = json.dumps(request)
    at = at % (len(text) + 1)
    parse_quietly(text[:at] + junk + text[at:])
    parse_quietly(text[:at])


# --- SDP -----------------------------------------------------------------------------------

INTERESTING_NUMBERS = [
    "0",
    "1",
    "-1",
    "9",
    "15",
    "72",
    "127",
    "128",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "1" * 30,
    "",
    "x",
    "٣",
    "1_0",
    "+5",
]
INTERESTING_TOKENS = [
    "",
    " ",
    "  ",
    ":",
    "/",
    ";",
    "=",
    "a=",
    "m=",
    "\x00",
    "\t",
    "\r",
    "\x0b",
    "\x1c",
    "\x85",
    "\u2028",
    "é",
    "\ud800",
    "actpass",
    "holdconn",
    "sha-1",
    "sha-256",
    "application",
    "text",
    "UDP/TLS/RTP/SAVPF",
    "RTP/AVP",
    "BUNDLE",
    "SIM",
    "FID",
    "*",
    "rtx",
    "opus",
    "VP8",
    "H264",
    "typ",
    "host",
    "raddr",
    "local",
    "x.local",
    "::1",
    "apt",
    "simulcast",
    "inactive",
]


@st.composite
def mutated(draw: st.DrawFn, sources: list[str]) -> str:
    lines = draw(st.sampled_from(sources)).split("\r\n")
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(
            st.sampled_from(
                ["delete", "duplicate", "move", "number", "token", "insert", "cut", "line"]
            )
        )
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if operation == "delete" and len(lines) > 1:
            del lines[i]
        elif operation == "duplicate":
            lines.insert(i, line)
        elif operation == "move":
            lines.insert(draw(st.integers(0, len(lines))), lines.pop(i))
        elif operation == "number":
            digits = [n for n, ch in enumerate(line) if ch.isdigit()]
            if digits:
                at = draw(st.sampled_from(digits))
                end = at
                while end < len(line) and line[end].isdigit():
                    end += 1
                lines[i] = line[:at] + draw(st.sampled_from(INTERESTING_NUMBERS)) + line[end:]
        elif operation == "token":
            cuts = [n for n, ch in enumerate(line) if ch in " :/=;"] or [len(line)]
            at = draw(st.sampled_from(cuts))
            replacement = draw(st.sampled_from(INTERESTING_TOKENS))
            rest = line[at + 1 :]
            end = min([n for n, ch in enumerate(rest) if ch in " :/=;"] or [len(rest)])
            lines[i] = line[: at + 1] + replacement + rest[end:]
        elif operation == "insert":
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(st.text(ALL_CHARACTERS, max_size=6)) + line[at:]
        elif operation == "cut":
            lines[i] = line[: draw(st.integers(0, len(line)))]
        else:
            lines.insert(
                i,
                draw(st.sampled_from(["a=", "m=", "a=x"]))
                + draw(st.text(ALL_CHARACTERS, max_size=30)),
            )
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    return ending.join(lines)


@FUZZ
@given(st.text(ALL_CHARACTERS))
def test_any_text_as_sdp(sdp: str) -> None:
    check_quietly(sdp)
    check_quietly(sdp, answer=True)
    check_quietly("v=0\r\n" + sdp)


@MORE
@given(mutated(OFFERS))
def test_mutated_real_offers(sdp: str) -> None:
    assert_accepted_sdp_is_safe(sdp)


@FUZZ
@given(mutated(ANSWERS))
def test_mutated_real_answers(sdp: str) -> None:
    assert_accepted_sdp_is_safe(sdp, answer=True)


@FUZZ
@given(mutated(OFFERS), st.integers(0, 2**53))
def test_mutated_offers_through_a_publish_frame(sdp: str, request_id: int) -> None:
    result = parse_quietly(json.dumps({"type": "publish", "id": request_id, "sdp": sdp}))
    if not isinstance(result, SignalingError):
        assert result.id == request_id
        assert_accepted_sdp_is_safe(sdp)


CANDIDATE_LINES = [
    line[2:] for sdp in OFFERS for line in sdp.split("\r\n") if line.startswith("a=candidate:")
]


@FUZZ
@given(st.text(ALL_CHARACTERS) | mutated(CANDIDATE_LINES))
def test_any_candidate(line: str) -> None:
    try:
        candidate = parse_candidate(line)
    except SignalingError as exc:
        assert exc.code == ErrorCode.BAD_CANDIDATE
    else:
        assert parse_candidate(candidate.to_sdp()) == candidate
