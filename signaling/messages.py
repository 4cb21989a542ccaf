"""Requests and responses of signaling protocol version 1 (docs/protocol.md), without I/O.

``parse_request`` turns one WebSocket frame into a typed request or raises ``SignalingError``
with a stable code; nothing else escapes it, whatever the bytes. It checks,
in order:

1. the frame size (``message_too_big``, close 1009);
2. UTF-8 (RFC 3629), JSON (RFC 8259) with no duplicate keys (RFC 8259 §4 leaves them undefined,
   and two parsers that pick different ones are a classic smuggling bug), no ``NaN``/``Infinity``,
   no number longer than ``Limits.max_number_chars`` and no nesting deeper than
   ``Limits.max_json_depth`` — checked before parsing, so a deep frame never reaches the
   recursive parser;
3. a top-level object with a usable ``id`` (an integer 0 … 2**53 or a string of at most 64
   characters); errors before this point carry ``id: null``, errors after it carry the ``id``;
4. a known ``type`` (``unknown_type``), then the fields of that type (``malformed``, or the
   field's own code: ``invalid_name``, ``bad_candidate``).

Fields are described declaratively, one ``_Schema`` per type. Known string fields must not
contain NUL or unpaired surrogates (which cannot be stored or sent as UTF-8).

**Unknown fields are tolerated and dropped.** A newer client may add an optional field without
breaking against an older server (a rolling upgrade), and nothing unknown is ever stored, echoed
or forwarded; they still count towards the frame size and the nesting bound. A misspelt
*required* field is still caught, as a missing field.

The builders ``ok``, ``error`` and ``event`` write compact JSON with ``ensure_ascii=False`` (so a
Vietnamese name costs its UTF-8 bytes, not six per character) and never ``NaN``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from classroom.safety import IncidentCategory

from .errors import ErrorCode, RequestId, SignalingError
from .limits import DEFAULT_LIMITS, Limits
from .sdp_guard import Candidate, parse_candidate

__all__ = [
    "MAX_REQUEST_ID",
    "REQUEST_TYPES",
    "Admit",
    "Answer",
    "AskUnmute",
    "Bans",
    "Chat",
    "DataSaver",
    "DeleteMessage",
    "Deny",
    "EndLesson",
    "Ice",
    "IceCandidate",
    "Join",
    "Leave",
    "LowerHand",
    "ModerationLog",
    "Mute",
    "Pause",
    "Ping",
    "Publish",
    "RaiseHand",
    "Remove",
    "ReportIncident",
    "Request",
    "RequestId",
    "SetModerator",
    "Settings",
    "Stats",
    "Subscribe",
    "Unban",
    "View",
    "error",
    "error_for",
    "event",
    "normalise_name",
    "ok",
    "parse_request",
    "peek_id",
]

#: The largest integer ``id`` (JavaScript's ``Number.MAX_SAFE_INTEGER`` is 2**53 − 1).
MAX_REQUEST_ID = 2**53

PeerConnection = Literal["publish", "subscribe"]


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """``join``: a teacher with ``token``, a student with ``code``, ``password``, ``name``, or
    a participant whose connection dropped with ``resume``.

    Exactly one of the three forms: ``token`` alone, ``resume`` alone, or ``code``,
    ``password`` and ``name``. ``name`` is already normalised (``normalise_name``); a teacher
    may send one too.
    """

    id: RequestId
    token: str | None = None
    code: str | None = None
    password: str | None = None
    name: str | None = None
    resume: str | None = None
    link: str | None = None
    device: str | None = None  # the browser's random device key (bans of guests use it)

    @property
    def is_teacher(self) -> bool:
        return self.token is not None

    def __repr__(self) -> str:  # never put a password or a token in a log line
        return (
            f"Join(id={self.id!r}, token={'***' if self.token else None}, code={self.code!r}, "
            f"password={'***' if self.password is not None else None}, name={self.name!r}, "
            f"resume={'***' if self.resume else None}, link={'***' if self.link else None})"
        )


@dataclass(frozen=True, slots=True)
class Publish:
    """``publish``: an SDP offer for the publish peer connection (check it with
    ``sdp_guard.check_offer`` before using it)."""

    id: RequestId
    sdp: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``subscribe``: ask for the server's offer on the subscribe peer connection."""

    id: RequestId


@dataclass(frozen=True, slots=True)
class Answer:
    """``answer``: the client's SDP answer to the subscribe offer numbered ``version``."""

    id: RequestId
    sdp: str
    version: int


@dataclass(frozen=True, slots=True)
class IceCandidate:
    """A trickled candidate: W3C ``RTCIceCandidateInit`` with its candidate line parsed."""

    candidate: Candidate
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None
    username_fragment: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``RTCIceCandidateInit`` dictionary, rebuilt from the parsed fields."""
        return {
            "candidate": self.candidate.to_sdp(),
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
            "usernameFragment": self.username_fragment,
        }


@dataclass(frozen=True, slots=True)
class Ice:
    """``ice``: one trickled candidate for ``pc``; ``candidate`` is ``None`` at the end of
    candidates (JSON ``null``, or an empty ``candidate`` string as browsers send it)."""

    id: RequestId
    pc: PeerConnection
    candidate: IceCandidate | None


@dataclass(frozen=True, slots=True)
class Leave:
    """``leave``: answer ``ok``, then close the socket with 1000."""

    id: RequestId


@dataclass(frozen=True, slots=True)
class Ping:
    """``ping``: answer ``ok`` with the server time."""

    id: RequestId


@dataclass(frozen=True, slots=True)
class Pause:
    """``pause``: stop (``paused``) or restart forwarding one of the sender's own tracks."""

    id: RequestId
    producer: str
    paused: bool


@dataclass(frozen=True, slots=True)
class View:
    """``view``: forward only these participants' video to the sender (``None``: all)."""

    id: RequestId
    video: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class DataSaver:
    """``data_saver``: send the sender audio only (``on``), whatever its link carries."""

    id: RequestId
    on: bool


@dataclass(frozen=True, slots=True)
class Stats:
    """``stats``: staff read one participant's connection figures."""

    id: RequestId
    participant: str


@dataclass(frozen=True, slots=True)
class EndLesson:
    """``end_lesson``: the teacher ends the lesson for everyone."""

    id: RequestId


@dataclass(frozen=True, slots=True)
class SetModerator:
    """``set_moderator``: the teacher makes a participant a moderator, or takes it back."""

    id: RequestId
    participant: str
    moderator: bool


@dataclass(frozen=True, slots=True)
class Mute:
    """``mute``: staff stop one participant's (or every student's) microphone or camera."""

    id: RequestId
    participant: str  # a participant id, or "students"
    kind: Literal["audio", "video"]


@dataclass(frozen=True, slots=True)
class AskUnmute:
    """``ask_unmute``: staff ask a participant to turn the microphone on (they may accept)."""

    id: RequestId
    participant: str


@dataclass(frozen=True, slots=True)
class Settings:
    """``settings``: staff change the lesson's controls (each field optional)."""

    id: RequestId
    locked: bool | None = None
    chat: bool | None = None
    waiting_room: str | None = None
    permissions: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RaiseHand:
    """``raise_hand``: raise (or lower) one's own hand."""

    id: RequestId
    raised: bool


@dataclass(frozen=True, slots=True)
class LowerHand:
    """``lower_hand``: staff lower someone's hand."""

    id: RequestId
    participant: str


@dataclass(frozen=True, slots=True)
class Remove:
    """``remove``: staff remove a participant from the lesson (and with ``ban``, for good)."""

    id: RequestId
    participant: str
    ban: bool = False


@dataclass(frozen=True, slots=True)
class Admit:
    """``admit``: staff let a waiting participant (or ``"all"``) into the lesson."""

    id: RequestId
    participant: str


@dataclass(frozen=True, slots=True)
class Deny:
    """``deny``: staff turn a waiting participant (or ``"all"``) away (with ``ban``, for good)."""

    id: RequestId
    participant: str
    ban: bool = False


@dataclass(frozen=True, slots=True)
class Bans:
    """``bans``: staff list the lesson's bans."""

    id: RequestId


@dataclass(frozen=True, slots=True)
class Unban:
    """``unban``: staff lift a ban."""

    id: RequestId
    ban: str


@dataclass(frozen=True, slots=True)
class Chat:
    """``chat``: a message to the lesson, or (``to``) privately to the teacher."""

    id: RequestId
    text: str
    to: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    """``delete_message``: staff delete a chat message for everyone."""

    id: RequestId
    message: str


@dataclass(frozen=True, slots=True)
class ReportIncident:
    """``report_incident``: anyone reports a problem to the teacher and the school."""

    id: RequestId
    category: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class ModerationLog:
    """``moderation_log``: staff read the lesson's audit log."""

    id: RequestId


Request = (
    Join
    | Publish
    | Subscribe
    | Answer
    | Ice
    | Leave
    | Ping
    | Pause
    | View
    | DataSaver
    | Stats
    | EndLesson
    | SetModerator
    | Mute
    | AskUnmute
    | Settings
    | RaiseHand
    | LowerHand
    | Remove
    | Admit
    | Deny
    | Bans
    | Unban
    | Chat
    | DeleteMessage
    | ReportIncident
    | ModerationLog
)


# --- field checks --------------------------------------------------------------------------


def _malformed(reason: str) -> SignalingError:
    return SignalingError(ErrorCode.MALFORMED, f"Malformed request: {reason}.")


def _is_clean_text(value: str) -> bool:
    """No NUL and no unpaired surrogate (JSON ``\\ud800`` escapes make them)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Check = Callable[[str, Any, Limits], Any]


def _text(max_chars: Callable[[Limits], int] | None = None, min_chars: int = 0) -> Check:
    def check(key: str, value: Any, limits: Limits) -> str:
        if not isinstance(value, str):
            raise _malformed(f"'{key}' must be a string")
        if not _is_clean_text(value):
            raise _malformed(f"'{key}' contains a NUL character or invalid Unicode")
        if len(value) < min_chars:
            raise _malformed(f"'{key}' must not be empty")
        if max_chars is not None and len(value) > max_chars(limits):
            raise _malformed(f"'{key}' is longer than {max_chars(limits)} characters")
        return value

    return check


def _integer(low: int, high: int) -> Check:
    def check(key: str, value: Any, limits: Limits) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _malformed(f"'{key}' must be an integer")
        if not low <= value <= high:
            raise _malformed(f"'{key}' must be between {low} and {high}")
        return value

    return check


def _boolean(key: str, value: Any, limits: Limits) -> bool:
    if not isinstance(value, bool):
        raise _malformed(f"'{key}' must be true or false")
    return value


_OBJECT_ID = re.compile(r"[A-Za-z0-9_-]+")


def _object_id(key: str, value: Any, limits: Limits) -> str:
    """An id the server handed out (``p_…``, ``pr_…``): URL-safe characters, bounded."""
    if not isinstance(value, str):
        raise _malformed(f"'{key}' must be a string")
    if not 0 < len(value) <= limits.max_object_id_chars or not _OBJECT_ID.fullmatch(value):
        raise _malformed(f"'{key}' is not an id")
    return value


def _id_list(key: str, value: Any, limits: Limits) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _malformed(f"'{key}' must be a list of ids or null")
    if len(value) > limits.max_view_ids:
        raise _malformed(f"'{key}' lists more than {limits.max_view_ids} ids")
    return tuple(dict.fromkeys(_object_id(key, item, limits) for item in value))


def _text_list(key: str, value: Any, limits: Limits) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 16:
        raise _malformed(f"'{key}' must be a list of at most 16 names")
    if not all(isinstance(v, str) and 0 < len(v) <= 32 for v in value):
        raise _malformed(f"'{key}' must list short names")
    return tuple(dict.fromkeys(value))


def _choice(*options: str) -> Check:
    def check(key: str, value: Any, limits: Limits) -> str:
        if not isinstance(value, str) or value not in options:
            raise _malformed(f"'{key}' must be one of: {', '.join(options)}")
        return value

    return check


def normalise_name(name: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """A display name as the lesson shows it, or ``SignalingError("invalid_name")``.

    The same rule as ``classroom.lessons.normalise_name``: NFC (so one name has one spelling),
    control (Cc), format (Cf: bidirectional overrides make one name display as another) and
    surrogate (Cs) characters refused — checked before whitespace is collapsed, so a tab or a
    newline is refused rather than turned into a space — then runs of whitespace made one space,
    and 1 to ``limits.max_name_chars`` characters.
    """
    invalid = SignalingError(
        ErrorCode.INVALID_NAME,
        f"Please enter a name of 1 to {limits.max_name_chars} characters, without special "
        "control characters.",
    )
    if not isinstance(name, str) or len(name) > 4 * limits.max_name_chars + 64:
        raise invalid
    normalised = unicodedata.normalize("NFC", name)
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in normalised):
        raise invalid
    clean = " ".join(normalised.split())
    if not 0 < len(clean) <= limits.max_name_chars:
        raise invalid
    return clean


def _device(key: str, value: Any, limits: Limits) -> str:
    """A browser's device key: 16 to ``max_device_chars`` URL-safe characters."""
    if not isinstance(value, str):
        raise _malformed(f"'{key}' must be a string")
    if not 16 <= len(value) <= limits.max_device_chars or not _OBJECT_ID.fullmatch(value):
        raise _malformed(f"'{key}' is not a device key")
    return value


def _name(key: str, value: Any, limits: Limits) -> str:
    if not isinstance(value, str):
        raise _malformed(f"'{key}' must be a string")
    return normalise_name(value, limits)


def _bad_candidate(reason: str) -> SignalingError:
    return SignalingError(ErrorCode.BAD_CANDIDATE, f"Invalid ICE candidate: {reason}.")


def _candidate(key: str, value: Any, limits: Limits) -> IceCandidate | None:
    """W3C ``RTCIceCandidateInit``: ``candidate`` plus ``sdpMid`` and/or ``sdpMLineIndex``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _malformed(f"'{key}' must be an object or null")
    line = value.get("candidate")
    if not isinstance(line, str):
        raise _malformed(f"'{key}.candidate' must be a string")
    if line == "":
        return None  # end of candidates, as a browser's last icecandidate event says it
    sdp_mid = value.get("sdpMid")
    if sdp_mid is not None:
        if not isinstance(sdp_mid, str):
            raise _malformed(f"'{key}.sdpMid' must be a string or null")
        if not sdp_mid or len(sdp_mid) > limits.max_mid_chars or not _is_clean_text(sdp_mid):
            raise _bad_candidate("sdpMid is not a valid mid")
    index = value.get("sdpMLineIndex")
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int):
            raise _malformed(f"'{key}.sdpMLineIndex' must be an integer or null")
        if not 0 <= index <= 65535:
            raise _bad_candidate("sdpMLineIndex is out of range")
    if sdp_mid is None and index is None:
        raise _bad_candidate("it needs sdpMid or sdpMLineIndex")
    ufrag = value.get("usernameFragment")
    if ufrag is not None:
        if not isinstance(ufrag, str):
            raise _malformed(f"'{key}.usernameFragment' must be a string or null")
        if not re.fullmatch(r"[A-Za-z0-9+/]{1,256}", ufrag):
            raise _bad_candidate("usernameFragment is not a valid ICE username fragment")
    return IceCandidate(
        candidate=parse_candidate(line, limits),
        sdp_mid=sdp_mid,
        sdp_mline_index=index,
        username_fragment=ufrag,
    )


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    check: Check
    required: bool = True
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class _Schema:
    build: Callable[..., Request]
    fields: tuple[_Field, ...] = ()
    finish: Callable[[dict[str, Any]], None] | None = None


def _join_forms(values: dict[str, Any]) -> None:
    if values.get("link") is not None:
        # A personal link: the page's lesson code may come along; the name is the roster's.
        if any(values.get(k) is not None for k in ("token", "resume", "password")):
            raise _malformed("send either 'link' (with the lesson 'code'), or another form")
        values.pop("name", None)
        return
    for single in ("token", "resume"):
        if values.get(single) is not None:
            others = ("token", "resume", "code", "password")
            if any(values.get(k) is not None for k in others if k != single):
                raise _malformed("send either 'token', 'resume', or 'code', 'password' and 'name'")
            return
    for key in ("code", "password", "name"):
        if values.get(key) is None:
            raise _malformed(f"missing '{key}' (or send a 'token')")


def _limit(attr: str) -> Callable[[Limits], int]:
    return lambda limits: cast(int, getattr(limits, attr))


_SCHEMAS: dict[str, _Schema] = {
    "join": _Schema(
        Join,
        (
            _Field("token", _text(_limit("max_token_chars"), min_chars=1), required=False),
            _Field("code", _text(_limit("max_code_chars"), min_chars=1), required=False),
            _Field("password", _text(_limit("max_password_chars")), required=False),
            _Field("name", _name, required=False),
            _Field("resume", _text(_limit("max_token_chars"), min_chars=1), required=False),
            _Field("link", _text(_limit("max_token_chars"), min_chars=1), required=False),
            _Field("device", _device, required=False),
        ),
        finish=_join_forms,
    ),
    "pause": _Schema(Pause, (_Field("producer", _object_id), _Field("paused", _boolean))),
    "view": _Schema(View, (_Field("video", _id_list, nullable=True),)),
    "data_saver": _Schema(DataSaver, (_Field("on", _boolean),)),
    "stats": _Schema(Stats, (_Field("participant", _object_id),)),
    "end_lesson": _Schema(EndLesson),
    "set_moderator": _Schema(
        SetModerator, (_Field("participant", _object_id), _Field("moderator", _boolean))
    ),
    "mute": _Schema(
        Mute, (_Field("participant", _object_id), _Field("kind", _choice("audio", "video")))
    ),
    "ask_unmute": _Schema(AskUnmute, (_Field("participant", _object_id),)),
    "settings": _Schema(
        Settings,
        (
            _Field("locked", _boolean, required=False),
            _Field("chat", _boolean, required=False),
            _Field("waiting_room", _choice("everyone", "guests", "nobody"), required=False),
            _Field("permissions", _text_list, required=False),
        ),
    ),
    "raise_hand": _Schema(RaiseHand, (_Field("raised", _boolean),)),
    "lower_hand": _Schema(LowerHand, (_Field("participant", _object_id),)),
    "remove": _Schema(
        Remove, (_Field("participant", _object_id), _Field("ban", _boolean, required=False))
    ),
    "admit": _Schema(Admit, (_Field("participant", _object_id),)),
    "deny": _Schema(
        Deny, (_Field("participant", _object_id), _Field("ban", _boolean, required=False))
    ),
    "bans": _Schema(Bans),
    "unban": _Schema(Unban, (_Field("ban", _object_id),)),
    "chat": _Schema(
        Chat,
        (
            # The chat module normalises and bounds the text (``invalid_message``); this bound
            # only keeps a frame from carrying a novel.
            _Field("text", _text(lambda limits: 4 * limits.max_chat_chars)),
            _Field("to", _object_id, required=False),
        ),
    ),
    "delete_message": _Schema(DeleteMessage, (_Field("message", _object_id),)),
    "report_incident": _Schema(
        ReportIncident,
        (
            _Field("category", _choice(*(str(c) for c in IncidentCategory))),
            _Field("text", _text(_limit("max_incident_chars")), required=False),
        ),
    ),
    "moderation_log": _Schema(ModerationLog),
    "publish": _Schema(Publish, (_Field("sdp", _text(min_chars=1)),)),
    "subscribe": _Schema(Subscribe),
    "answer": _Schema(
        Answer,
        (_Field("sdp", _text(min_chars=1)), _Field("version", _integer(1, MAX_REQUEST_ID))),
    ),
    "ice": _Schema(
        Ice,
        (
            _Field("pc", _choice("publish", "subscribe")),
            _Field("candidate", _candidate, nullable=True),
        ),
    ),
    "leave": _Schema(Leave),
    "ping": _Schema(Ping),
}

#: The request types of protocol version 1.
REQUEST_TYPES = frozenset(_SCHEMAS)


# --- frames --------------------------------------------------------------------------------


class _Refused(ValueError):
    """Raised from inside ``json.loads`` hooks; becomes ``malformed``."""


# A JSON string, or an unterminated one running to the end: never fails, so scanning is linear.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether brackets nest deeper than ``max_depth`` (or do not pair up).

    Strips strings, keeps only brackets, then removes innermost pairs ``max_depth`` times:
    anything left was deeper. Linear per pass and all in C, so a 64 KiB ``[[[[…`` costs
    microseconds and never reaches the recursive JSON parser.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


def _decode(frame: str | bytes, limits: Limits) -> str:
    if isinstance(frame, bytearray | memoryview):
        frame = bytes(frame)
    too_big = SignalingError(
        ErrorCode.MESSAGE_TOO_BIG,
        f"Messages may be at most {limits.max_frame_bytes} bytes.",
        close_code=1009,
    )
    if isinstance(frame, bytes):
        if len(frame) > limits.max_frame_bytes:
            raise too_big
        try:
            return frame.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("the frame is not valid UTF-8") from None
    if isinstance(frame, str):
        if len(frame) > limits.max_frame_bytes or (
            len(frame) * 4 > limits.max_frame_bytes
            and len(frame.encode("utf-8", "surrogatepass")) > limits.max_frame_bytes
        ):
            raise too_big
        return frame
    raise _malformed("the frame is neither text nor bytes")


def _load(text: str, limits: Limits) -> Any:
    if _too_deep(text, limits.max_json_depth):
        raise _malformed(f"not JSON, or nested deeper than {limits.max_json_depth} levels")

    def parse_int(digits: str) -> int:
        if len(digits) > limits.max_number_chars:
            raise _Refused("a number is too long")
        return int(digits)

    def parse_float(digits: str) -> float:
        if len(digits) > limits.max_number_chars:
            raise _Refused("a number is too long")
        value = float(digits)
        if value in (float("inf"), float("-inf")):
            raise _Refused("a number is too large")
        return value

    def parse_constant(name: str) -> Any:
        raise _Refused(f"{name} is not JSON")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise _Refused("a key appears twice in one object")
            result[key] = value
        return result

    try:
        return json.loads(
            text,
            parse_int=parse_int,
            parse_float=parse_float,
            parse_constant=parse_constant,
            object_pairs_hook=pairs,
        )
    except _Refused as exc:
        raise _malformed(str(exc)) from None
    except (ValueError, RecursionError):
        raise _malformed("the frame is not valid JSON") from None


def _request_id(obj: dict[str, Any], limits: Limits) -> RequestId:
    if "id" not in obj:
        raise _malformed("missing 'id'")
    value = obj["id"]
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if 0 <= value <= MAX_REQUEST_ID:
            return value
    elif isinstance(value, str):
        if len(value) <= limits.max_request_id_chars and _is_clean_text(value):
            return value
    raise _malformed(
        f"'id' must be an integer from 0 to 2^53 or a string of at most "
        f"{limits.max_request_id_chars} characters"
    )


def _read(frame: str | bytes, limits: Limits) -> tuple[dict[str, Any], RequestId]:
    obj = _load(_decode(frame, limits), limits)
    if not isinstance(obj, dict):
        raise _malformed("a request must be a JSON object")
    return obj, _request_id(obj, limits)


def parse_request(frame: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Request:
    """One frame → one typed request; raises ``SignalingError`` (and nothing else) otherwise.

    The error's ``request_id`` is the frame's ``id`` when it could be read, else ``None``; a
    ``message_too_big`` error has ``close_code`` 1009.
    """
    obj, request_id = _read(frame, limits)
    try:
        kind = obj.get("type")
        if kind is None:
            raise _malformed("missing 'type'")
        if not isinstance(kind, str):
            raise _malformed("'type' must be a string")
        schema = _SCHEMAS.get(kind)
        if schema is None:
            raise SignalingError(
                ErrorCode.UNKNOWN_TYPE,
                "This server does not know that request type. Reload the page to get the "
                "current version of the app.",
            )
        values: dict[str, Any] = {}
        for spec in schema.fields:
            if spec.key not in obj:
                if spec.required:
                    raise _malformed(f"missing '{spec.key}'")
                continue
            raw = obj[spec.key]
            if raw is None and not spec.nullable:
                if spec.required:
                    raise _malformed(f"'{spec.key}' must not be null")
                continue
            values[spec.key] = spec.check(spec.key, raw, limits)
        if schema.finish is not None:
            schema.finish(values)
        return schema.build(id=request_id, **values)
    except SignalingError as exc:
        raise exc.with_request_id(request_id) from None


def peek_id(frame: str | bytes, limits: Limits = DEFAULT_LIMITS) -> RequestId | None:
    """The frame's ``id`` if it has a valid one, else ``None``; never raises.

    For answering a frame that will not be served (e.g. ``rate_limited``) with the right ``id``.
    """
    try:
        return _read(frame, limits)[1]
    except SignalingError:
        return None


# --- responses and events ------------------------------------------------------------------

_CODE_SHAPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RESERVED = frozenset({"type", "id", "code", "message", "event", "data"})


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def ok(id: RequestId | None, data: Mapping[str, Any] | None = None) -> str:
    """``{"type":"ok","id":…,"data":{…}}``; ``data`` defaults to ``{}``."""
    return _dumps({"type": "ok", "id": id, "data": dict(data) if data is not None else {}})


def error(
    id: RequestId | None,
    code: ErrorCode | str,
    message: str | None = None,
    **extra: Any,
) -> str:
    """``{"type":"error","id":…,"code":…,"message":…, **extra}``.

    ``code`` is a signaling ``ErrorCode`` or another layer's stable snake_case code (the
    classroom's ``lesson_ended``, say); ``message`` defaults to the code's default message.
    """
    code_text = str(code.value if isinstance(code, ErrorCode) else code)
    if not _CODE_SHAPE.fullmatch(code_text):
        raise ValueError(f"error code {code_text!r} is not a stable snake_case code")
    clash = _RESERVED & extra.keys()
    if clash:
        raise ValueError(f"extra fields {sorted(clash)} would overwrite the envelope")
    if message is None:
        try:
            message = SignalingError(code_text).message
        except ValueError:
            message = "The request was refused."
    return _dumps({"type": "error", "id": id, "code": code_text, "message": message, **extra})


def error_for(exc: SignalingError, id: RequestId | None = None) -> str:
    """The error response for ``exc``, with ``exc.request_id`` unless ``id`` is given."""
    request_id = id if id is not None else exc.request_id
    return error(request_id, exc.code, exc.message, **exc.extra)


def event(name: str, data: Mapping[str, Any] | None = None) -> str:
    """``{"type":"event","event":…,"data":{…}}``; ``data`` defaults to ``{}``."""
    if not _CODE_SHAPE.fullmatch(name):
        raise ValueError(f"event name {name!r} is not snake_case")
    return _dumps({"type": "event", "event": name, "data": dict(data) if data is not None else {}})
