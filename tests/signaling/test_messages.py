"""parse_request and the response builders (docs/protocol.md: frame size, malformed frames)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from signaling import messages
from signaling.errors import ErrorCode, SignalingError
from signaling.limits import DEFAULT_LIMITS, Limits
from signaling.messages import (
    MAX_REQUEST_ID,
    Answer,
    Ice,
    Join,
    Leave,
    Ping,
    Publish,
    Subscribe,
    error,
    error_for,
    event,
    ok,
    parse_request,
    peek_id,
)

CANDIDATE = "candidate:3261573364 1 udp 2122194687 127.0.0.1 51712 typ host generation 0"


def frame(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)


def refused(raw: str | bytes, limits: Limits = DEFAULT_LIMITS) -> SignalingError:
    with pytest.raises(SignalingError) as info:
        parse_request(raw, limits)
    return info.value


# --- valid requests ------------------------------------------------------------------------


def test_student_join() -> None:
    request = parse_request(
        frame(type="join", id=1, code="123456789", password="bí mật", name="Nguyễn Văn An")
    )
    assert request == Join(
        id=1, token=None, code="123456789", password="bí mật", name="Nguyễn Văn An"
    )
    assert isinstance(request, Join) and not request.is_teacher


def test_teacher_join() -> None:
    request = parse_request(frame(type="join", id="j1", token="tok_abc"))
    assert request == Join(id="j1", token="tok_abc")
    assert isinstance(request, Join) and request.is_teacher


def test_join_repr_hides_secrets() -> None:
    request = parse_request(frame(type="join", id=1, code="1", password="hunter2", name="An"))
    assert "hunter2" not in repr(request)
    teacher = parse_request(frame(type="join", id=1, token="secret-token"))
    assert "secret-token" not in repr(teacher)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (frame(type="publish", id=2, sdp="v=0\r\n"), Publish(id=2, sdp="v=0\r\n")),
        (frame(type="subscribe", id=3), Subscribe(id=3)),
        (frame(type="answer", id=4, sdp="v=0", version=1), Answer(id=4, sdp="v=0", version=1)),
        (frame(type="leave", id=9), Leave(id=9)),
        (frame(type="ping", id=10), Ping(id=10)),
        (frame(type="ice", id=5, pc="publish", candidate=None), Ice(5, "publish", None)),
    ],
)
def test_other_requests(raw: str, expected: object) -> None:
    assert parse_request(raw) == expected


def test_bytes_frames_are_utf8() -> None:
    assert parse_request(frame(type="ping", id="é").encode()) == Ping(id="é")
    assert parse_request(bytearray(b'{"type":"ping","id":1}')) == Ping(id=1)  # type: ignore[arg-type]


def test_ice_candidate() -> None:
    request = parse_request(
        frame(
            type="ice",
            id=5,
            pc="subscribe",
            candidate={
                "candidate": CANDIDATE,
                "sdpMid": "0",
                "sdpMLineIndex": 0,
                "usernameFragment": "Xk7q",
            },
        )
    )
    assert isinstance(request, Ice) and request.candidate is not None
    assert request.pc == "subscribe"
    parsed = request.candidate.candidate
    assert (parsed.ip, parsed.port, parsed.type, parsed.transport) == (
        "127.0.0.1",
        51712,
        "host",
        "udp",
    )
    assert request.candidate.to_json() == {
        "candidate": CANDIDATE,
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "Xk7q",
    }


def test_ice_end_of_candidates_as_browsers_send_it() -> None:
    request = parse_request(
        frame(type="ice", id=5, pc="publish", candidate={"candidate": "", "sdpMid": "0"})
    )
    assert request == Ice(id=5, pc="publish", candidate=None)


def test_ice_candidate_needs_mid_or_index() -> None:
    exc = refused(frame(type="ice", id=5, pc="publish", candidate={"candidate": CANDIDATE}))
    assert (exc.code, exc.request_id) == (ErrorCode.BAD_CANDIDATE, 5)
    only_index = parse_request(
        frame(
            type="ice",
            id=5,
            pc="publish",
            candidate={"candidate": CANDIDATE, "sdpMid": None, "sdpMLineIndex": 1},
        )
    )
    assert isinstance(only_index, Ice) and only_index.candidate is not None
    assert only_index.candidate.sdp_mline_index == 1


@pytest.mark.parametrize(
    ("candidate", "code"),
    [
        ({"candidate": "candidate:garbage", "sdpMid": "0"}, ErrorCode.BAD_CANDIDATE),
        ({"candidate": CANDIDATE, "sdpMid": ""}, ErrorCode.BAD_CANDIDATE),
        ({"candidate": CANDIDATE, "sdpMid": "0" * 17}, ErrorCode.BAD_CANDIDATE),
        ({"candidate": CANDIDATE, "sdpMLineIndex": -1}, ErrorCode.BAD_CANDIDATE),
        (
            {"candidate": CANDIDATE, "sdpMid": "0", "usernameFragment": "a b"},
            ErrorCode.BAD_CANDIDATE,
        ),
        ({"candidate": CANDIDATE, "sdpMid": 0}, ErrorCode.MALFORMED),
        ({"candidate": CANDIDATE, "sdpMLineIndex": "0"}, ErrorCode.MALFORMED),
        ({"candidate": CANDIDATE, "sdpMLineIndex": True}, ErrorCode.MALFORMED),
        ({"candidate": 7, "sdpMid": "0"}, ErrorCode.MALFORMED),
        ({"sdpMid": "0"}, ErrorCode.MALFORMED),
        ("candidate:1 1 udp 1 1.2.3.4 5 typ host", ErrorCode.MALFORMED),
    ],
)
def test_bad_ice_candidates(candidate: Any, code: ErrorCode) -> None:
    exc = refused(frame(type="ice", id="c", pc="publish", candidate=candidate))
    assert (exc.code, exc.request_id) == (code, "c")


def test_unknown_fields_are_tolerated_and_dropped() -> None:
    request = parse_request(frame(type="ping", id=1, future={"nested": [1, 2.5, None]}, x="y"))
    assert request == Ping(id=1)


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("  Nguyễn   Văn\u00a0An ", "Nguyễn Văn An"),
        ("Nguye\u0302\u0303n", "Nguyễn"),  # NFD → NFC: one name, one spelling
        ("a" * 64, "a" * 64),
        ("李小龙", "李小龙"),
        ("😀 An", "😀 An"),
    ],
)
def test_names_are_normalised(name: str, expected: str) -> None:
    request = parse_request(frame(type="join", id=1, code="1", password="p", name=name))
    assert isinstance(request, Join) and request.name == expected


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a" * 65, "An\x00", "An\tB", "An\nB", "\u202eAn", "A\u200bn", "An\x7f"],
)
def test_invalid_names(name: str) -> None:
    exc = refused(frame(type="join", id=1, code="1", password="p", name=name))
    assert (exc.code, exc.request_id) == (ErrorCode.INVALID_NAME, 1)


def test_name_must_be_a_string() -> None:
    exc = refused(frame(type="join", id=1, code="1", password="p", name=5))
    assert exc.code == ErrorCode.MALFORMED


def test_name_agrees_with_the_classroom() -> None:
    from classroom import lessons

    for name in ["  Nguyễn   Văn An ", "Nguye\u0302\u0303n", "x" * 64]:
        assert messages.normalise_name(name) == lessons.normalise_name(name)


# --- join forms ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"token": "t", "code": "1"},
        {"token": "t", "password": "p"},
        {"code": "1", "password": "p"},
        {"code": "1", "name": "An"},
        {"password": "p", "name": "An"},
        {},
        {"token": ""},
        {"token": "t" * 513},
        {"code": "", "password": "p", "name": "An"},
        {"code": "1", "password": "p" * 257, "name": "An"},
        {"code": 123456789, "password": "p", "name": "An"},
        {"code": "1", "password": "a\x00b", "name": "An"},
        {"code": "1", "password": "\ud800", "name": "An"},
    ],
)
def test_bad_join_forms(fields: dict[str, Any]) -> None:
    exc = refused(frame(type="join", id=1, **fields))
    assert (exc.code, exc.request_id) == (ErrorCode.MALFORMED, 1)


def test_a_lone_surrogate_escape_is_refused() -> None:
    raw = '{"type":"join","id":1,"code":"1","password":"\\ud800","name":"An"}'
    assert refused(raw).code == ErrorCode.MALFORMED


# --- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("good", [0, 1, MAX_REQUEST_ID, "", "x" * 64, "ệ" * 64])
def test_good_ids(good: int | str) -> None:
    assert parse_request(frame(type="ping", id=good)) == Ping(id=good)


@pytest.mark.parametrize(
    "bad", [-1, MAX_REQUEST_ID + 1, True, False, 1.0, 1.5, "x" * 65, None, [], {}, "a\x00"]
)
def test_bad_ids_get_a_null_id(bad: object) -> None:
    exc = refused(frame(type="ping", id=bad))
    assert (exc.code, exc.request_id) == (ErrorCode.MALFORMED, None)


def test_missing_id() -> None:
    exc = refused(frame(type="ping"))
    assert (exc.code, exc.request_id) == (ErrorCode.MALFORMED, None)


# --- frames --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "not json",
        "[]",
        '"ping"',
        "1",
        "null",
        "{",
        '{"type":"ping","id":1}x',
        '{"type":"ping","id":1,}',
        "\ufeff{}",
        '{"type":"ping","id":NaN}',
        '{"type":"ping","id":1,"x":Infinity}',
        '{"type":"ping","id":1,"x":-Infinity}',
        '{"type":"ping","id":1,"x":1e400}',
        '{"type":"ping","id":1,"x":' + "9" * 25 + "}",
        '{"type":"ping","id":1,"x":1.' + "0" * 30 + "}",
        '{"type":"ping","id":' + "1" * 5000 + "}",
        '{"type":"ping","id":1,"id":2}',
        '{"type":"ping","type":"leave","id":1}',
        b"\xff\xfe",
        b'{"type":"ping","id":"\xc3"}',
    ],
)
def test_unreadable_frames(raw: str | bytes) -> None:
    exc = refused(raw)
    assert (exc.code, exc.request_id, exc.close_code) == (ErrorCode.MALFORMED, None, None)


def test_frame_that_is_not_text_or_bytes() -> None:
    assert refused(12345).code == ErrorCode.MALFORMED  # type: ignore[arg-type]


def test_unknown_type_keeps_the_id() -> None:
    for kind in ["nope", "ok", "error", "event", "JOIN", ""]:
        exc = refused(frame(type=kind, id=42))
        assert (exc.code, exc.request_id) == (ErrorCode.UNKNOWN_TYPE, 42)


@pytest.mark.parametrize("kind", [None, 1, ["join"], {"t": 1}])
def test_type_must_be_a_string(kind: object) -> None:
    exc = refused(frame(type=kind, id=42))
    assert (exc.code, exc.request_id) == (ErrorCode.MALFORMED, 42)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "publish"},
        {"type": "publish", "sdp": None},
        {"type": "publish", "sdp": 5},
        {"type": "publish", "sdp": ""},
        {"type": "publish", "sdp": "v=0\x00"},
        {"type": "answer", "sdp": "v=0"},
        {"type": "answer", "sdp": "v=0", "version": 0},
        {"type": "answer", "sdp": "v=0", "version": "1"},
        {"type": "answer", "sdp": "v=0", "version": 1.0},
        {"type": "answer", "sdp": "v=0", "version": True},
        {"type": "answer", "sdp": "v=0", "version": MAX_REQUEST_ID + 1},
        {"type": "ice", "pc": "both", "candidate": None},
        {"type": "ice", "candidate": None},
        {"type": "ice", "pc": "publish"},
    ],
)
def test_wrong_fields_are_malformed_with_the_id(fields: dict[str, Any]) -> None:
    exc = refused(frame(id=77, **fields))
    assert (exc.code, exc.request_id) == (ErrorCode.MALFORMED, 77)


def test_frame_size_limit_counts_utf8_bytes() -> None:
    base = frame(type="ping", id=1, pad="")
    room = DEFAULT_LIMITS.max_frame_bytes - len(base)
    at_limit = frame(type="ping", id=1, pad="a" * room)
    assert len(at_limit.encode()) == DEFAULT_LIMITS.max_frame_bytes
    assert parse_request(at_limit) == Ping(id=1)
    assert parse_request(at_limit.encode()) == Ping(id=1)
    over = frame(type="ping", id=1, pad="a" * (room + 1))
    for raw in (over, over.encode()):
        exc = refused(raw)
        assert (exc.code, exc.close_code, exc.request_id) == (
            ErrorCode.MESSAGE_TOO_BIG,
            1009,
            None,
        )
    # fewer characters than the limit, more bytes: "ệ" is three bytes in UTF-8
    wide = frame(type="ping", id=1, pad="ệ" * (room // 3 + 1))
    assert len(wide) < DEFAULT_LIMITS.max_frame_bytes
    assert refused(wide).code == ErrorCode.MESSAGE_TOO_BIG


def test_custom_limits() -> None:
    small = Limits(max_frame_bytes=30)
    assert refused(frame(type="ping", id=1, pad="x" * 30), small).code == (
        ErrorCode.MESSAGE_TOO_BIG
    )


def test_nesting_limit() -> None:
    def nested(depth: int) -> str:  # the request object itself is level 1
        return '{"type":"ping","id":1,"x":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"

    assert parse_request(nested(DEFAULT_LIMITS.max_json_depth)) == Ping(id=1)
    assert refused(nested(DEFAULT_LIMITS.max_json_depth + 1)).code == ErrorCode.MALFORMED
    objects = '{"type":"ping","id":1,"x":' + '{"a":' * 20 + "1" + "}" * 20 + "}"
    assert refused(objects).code == ErrorCode.MALFORMED
    # brackets inside strings are not nesting
    assert parse_request('{"type":"ping","id":"[[[[[[[[[[","x":"]]]]{{{{"}') == Ping(
        id="[[[[[[[[[["
    )


def test_deep_nesting_is_refused_quickly() -> None:
    for raw in ["[" * 65_000, '{"a":' * 13_000, '["\\"' * 16_000, '"' + '\\"' * 30_000]:
        start = time.perf_counter()
        assert refused(raw).code == ErrorCode.MALFORMED
        assert time.perf_counter() - start < 1.0  # generous: real cost is a few ms


# --- peek_id -------------------------------------------------------------------------------


def test_peek_id() -> None:
    assert peek_id(frame(type="nope", id=3)) == 3
    assert peek_id(frame(type="publish", id="x", sdp=5)) == "x"
    assert peek_id("garbage") is None
    assert peek_id(frame(type="ping", id=-1)) is None
    assert peek_id(b"\xff") is None
    assert peek_id("[" * 100_000) is None


# --- builders ------------------------------------------------------------------------------


def test_ok() -> None:
    assert ok(7, {"time": 1.5, "name": "Nguyễn"}) == (
        '{"type":"ok","id":7,"data":{"time":1.5,"name":"Nguyễn"}}'
    )
    assert ok("a") == '{"type":"ok","id":"a","data":{}}'


def test_error() -> None:
    assert json.loads(error(7, "bad_password", "Wrong lesson code or password.")) == {
        "type": "error",
        "id": 7,
        "code": "bad_password",
        "message": "Wrong lesson code or password.",
    }
    assert json.loads(error(None, ErrorCode.RATE_LIMITED, retry_after=3)) == {
        "type": "error",
        "id": None,
        "code": "rate_limited",
        "message": "Too many attempts. Please wait a moment and try again.",
        "retry_after": 3,
    }
    # another layer's stable code passes through (the classroom's lesson_ended, say)
    assert json.loads(error(1, "lesson_ended", "The lesson has ended."))["code"] == ("lesson_ended")
    assert json.loads(error(1, "lesson_ended"))["message"]


def test_error_refuses_programming_mistakes() -> None:
    with pytest.raises(ValueError):
        error(1, "Not A Code")
    with pytest.raises(ValueError):
        error(1, "internal", "x", type="ok")
    with pytest.raises(ValueError):
        error(1, "internal", "x", retry_after=float("nan"))


def test_error_for() -> None:
    exc = SignalingError("rate_limited", "Slow down.", request_id=4, extra={"retry_after": 2})
    assert json.loads(error_for(exc)) == {
        "type": "error",
        "id": 4,
        "code": "rate_limited",
        "message": "Slow down.",
        "retry_after": 2,
    }
    assert json.loads(error_for(exc, id="other"))["id"] == "other"


def test_event() -> None:
    assert event("participant_left", {"id": "p_1", "reason": "left"}) == (
        '{"type":"event","event":"participant_left","data":{"id":"p_1","reason":"left"}}'
    )
    assert event("lesson_ended") == '{"type":"event","event":"lesson_ended","data":{}}'
    with pytest.raises(ValueError):
        event("Bad Name")


def test_round_trip_of_an_error_for_a_refused_frame() -> None:
    exc = refused(frame(type="nope", id="req-1"))
    response = json.loads(error_for(exc))
    assert (response["id"], response["code"]) == ("req-1", "unknown_type")


# --- resume, pause, view, end_lesson -----------------------------------------------------


def test_join_with_a_resume_token_alone() -> None:
    request = parse_request(frame(type="join", id=1, resume="abc"))
    assert isinstance(request, Join) and request.resume == "abc" and request.token is None
    assert "abc" not in repr(request)
    for extra in ({"token": "t"}, {"code": "123456789"}, {"password": "x"}):
        assert refused(frame(type="join", id=1, resume="abc", **extra)).code == "malformed"
    assert refused(frame(type="join", id=1, resume="")).code == "malformed"
    assert refused(frame(type="join", id=1, resume="x" * 513)).code == "malformed"


def test_pause_needs_an_id_and_a_boolean() -> None:
    request = parse_request(frame(type="pause", id=2, producer="pr_abc-DEF_1", paused=True))
    assert request == messages.Pause(id=2, producer="pr_abc-DEF_1", paused=True)
    for bad in (
        {"producer": "pr_1", "paused": 1},
        {"producer": "pr_1", "paused": "true"},
        {"producer": "pr_1"},
        {"producer": "", "paused": True},
        {"producer": "pr 1", "paused": True},
        {"producer": "p" * 65, "paused": True},
        {"producer": ["pr_1"], "paused": True},
    ):
        assert refused(frame(type="pause", id=2, **bad)).code == "malformed", bad


def test_view_takes_a_bounded_list_of_ids_or_null() -> None:
    request = parse_request(frame(type="view", id=3, video=["p_a", "p_b", "p_a"]))
    assert request == messages.View(id=3, video=("p_a", "p_b"))
    assert parse_request(frame(type="view", id=3, video=None)) == messages.View(id=3, video=None)
    assert parse_request(frame(type="view", id=3, video=[])) == messages.View(id=3, video=())
    limits = Limits(max_view_ids=3)
    assert refused(frame(type="view", id=3, video=["a", "b", "c", "d"]), limits).code == (
        "malformed"
    )
    for bad in ("p_a", [1], [None], [""], {"p_a": 1}):
        assert refused(frame(type="view", id=3, video=bad)).code == "malformed", bad
    assert refused(frame(type="view", id=3)).code == "malformed"


def test_end_lesson_has_no_fields() -> None:
    assert parse_request(frame(type="end_lesson", id=4)) == messages.EndLesson(id=4)
