"""check_offer / check_answer on real SDP, broken SDP and one mutation per rule."""

from __future__ import annotations

import pytest
from aiortc.sdp import SessionDescription

from signaling.errors import ErrorCode, SignalingError
from signaling.limits import DEFAULT_LIMITS, Limits
from signaling.sdp_guard import Candidate, SdpSummary, check_answer, check_offer, filter_candidates
from tests.signaling.sdp_fixtures import (
    VALID_ANSWERS,
    VALID_OFFERS,
    load,
    remove_lines,
    replace,
)

CHROME = load("chrome-offer.sdp")
AIORTC = load("aiortc-1.16-offer.sdp")
SAFARI = load("safari-iphone-offer.sdp")
FIREFOX = load("firefox-offer.sdp")
ANSWER = load("chrome-answer.sdp")


def refused(sdp: str, *, answer: bool = False, limits: Limits = DEFAULT_LIMITS) -> SignalingError:
    with pytest.raises(SignalingError) as info:
        (check_answer if answer else check_offer)(sdp, limits)
    return info.value


def bad(sdp: str, fragment: str, *, answer: bool = False) -> None:
    exc = refused(sdp, answer=answer)
    assert exc.code == ErrorCode.BAD_SDP, exc
    assert fragment in exc.message, exc.message
    assert exc.close_code is None


# --- real SDP ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_OFFERS)
def test_real_offers_are_accepted(name: str) -> None:
    summary = check_offer(load(name))
    assert [s.kind for s in summary.sections] == ["audio", "video"]
    assert [s.mid for s in summary.sections] == ["0", "1"]
    assert summary.bundle == ("0", "1")
    assert all(s.sends and not s.rejected and not s.simulcast for s in summary.sections)
    SessionDescription.parse(load(name))  # and aiortc reads it too


@pytest.mark.parametrize("name", VALID_ANSWERS)
def test_real_answers_are_accepted(name: str) -> None:
    summary = check_answer(load(name))
    assert all(s.direction == "recvonly" for s in summary.sections)
    assert all(s.setup in ("active", "passive") for s in summary.sections)


def test_live_aiortc_sdp(live_aiortc_sdp: tuple[str, str]) -> None:
    offer, answer = live_aiortc_sdp
    summary = check_offer(offer)
    assert [(s.kind, s.direction) for s in summary.sections] == [
        ("audio", "sendonly"),
        ("video", "sendonly"),
    ]
    for section in summary.sections:  # gathered on loopback only
        assert section.candidates
        assert {c.ip for c in section.candidates} == {"127.0.0.1"}
    check_answer(answer)


def test_chrome_summary() -> None:
    summary = check_offer(CHROME)
    audio, video = summary.sections
    opus = audio.codecs[0]
    assert (opus.payload_type, opus.name, opus.clock_rate, opus.channels) == (
        111,
        "opus",
        48000,
        2,
    )
    assert opus.parameters == {"minptime": "10", "useinbandfec": "1"}
    assert opus.feedback == ("transport-cc",)
    assert audio.codec(0) is not None and audio.codec(0).name == "PCMU"  # type: ignore[union-attr]
    assert audio.ssrcs == (1001234567,)
    assert video.codecs[0].name == "VP8" and video.codecs[0].payload_type == 96
    rtx = video.codec(97)
    assert rtx is not None and rtx.name == "rtx" and rtx.apt == 96
    assert "nack pli" in video.codecs[0].feedback
    assert video.ssrcs == (2231627014, 632943048)
    assert [(g.semantics, g.ssrcs) for g in video.ssrc_groups] == [("FID", (2231627014, 632943048))]
    assert {e.id: e.uri for e in video.extensions}[4] == "urn:ietf:params:rtp-hdrext:sdes:mid"
    assert len(audio.candidates) == 6
    assert {c.transport for c in audio.candidates} == {"udp", "tcp"}
    assert sum(c.is_mdns for c in audio.candidates) == 1
    assert audio.ice_ufrag == "Xk7q" and audio.setup == "actpass"
    assert audio.msids == (
        "3a1f8c9e-5d2b-4f6a-9c1e-7b8d2e4f6a10 8f4e2d1c-3b5a-4c6d-8e7f-9a0b1c2d3e4f",
    )
    assert summary.section("1") is video and summary.section("9") is None


def test_safari_offers_h264_first() -> None:
    video = check_offer(SAFARI).sections[1]
    assert [c.name for c in video.codecs[:3]] == ["H264", "rtx", "H264"]
    assert video.codecs[0].parameters["profile-level-id"] == "640c1f"


def test_firefox_session_level_fingerprint_and_direction_extmaps() -> None:
    audio, video = check_offer(FIREFOX).sections
    assert any(e.direction == "recvonly" for e in audio.extensions)
    assert audio.codec(101) is not None
    assert audio.codec(9) is not None and audio.codec(9).channels == 1  # type: ignore[union-attr]
    assert video.codec(119) is not None and video.codec(119).apt == 122  # type: ignore[union-attr]


def test_lf_line_endings_are_tolerated() -> None:
    assert check_offer(CHROME.replace("\r\n", "\n")) == check_offer(CHROME)
    mixed = CHROME.replace("\r\n", "\n", 20)
    check_offer(mixed)
    check_offer(CHROME.rstrip("\r\n"))  # no final line ending


# --- broken fixtures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "fragment"),
    [
        ("broken-truncated.sdp", ErrorCode.BAD_SDP, "media section 1 (line 44) has no a=mid"),
        ("broken-truncated-attribute.sdp", ErrorCode.BAD_SDP, "names mid 1"),
        ("broken-fingerprint-length.sdp", ErrorCode.BAD_SDP, "must be 32 bytes long"),
        ("broken-rtpmap-unlisted.sdp", ErrorCode.BAD_SDP, "112 is not on the m= line"),
        ("broken-missing-fingerprint.sdp", ErrorCode.BAD_SDP, "no a=fingerprint"),
        ("broken-sha1-fingerprint.sdp", ErrorCode.BAD_SDP, "sha-256 or stronger"),
        ("broken-simulcast.sdp", ErrorCode.BAD_SDP, "simulcast is not supported yet"),
        ("broken-datachannel.sdp", ErrorCode.BAD_SDP, "data channels"),
        ("unsupported-codec-vp9-only.sdp", ErrorCode.UNSUPPORTED_CODEC, "VP8"),
    ],
)
def test_broken_fixtures(name: str, code: ErrorCode, fragment: str) -> None:
    exc = refused(load(name))
    assert exc.code == code
    assert fragment in exc.message, exc.message


def test_truncated_anywhere_is_refused_or_still_complete() -> None:
    """Cut at every line end: either refused with a stable error, or a whole SDP."""
    for cut in range(len(CHROME)):
        if CHROME[cut] != "\n":
            continue
        try:
            check_offer(CHROME[: cut + 1])
        except SignalingError as exc:
            assert exc.code in (ErrorCode.BAD_SDP, ErrorCode.UNSUPPORTED_CODEC)


# --- one rule at a time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdp", "fragment"),
    [
        ("", "empty"),
        ("v=1\r\n", "must start with the line 'v=0'"),
        ("o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n", "must start with the line 'v=0'"),
        ("v=0\r\ns=-\r\n", "line 2 must be an 'o=' line"),
        ("v=0\r\n", "followed by an 'o=' line"),
        ("v=0\r\no=- x 1 IN IP4 0.0.0.0\r\ns=-\r\n", "(o=)"),
        (replace(AIORTC, "t=0 0", "t=now"), "(t=)"),
        (replace(AIORTC, "t=0 0\r\n", "t=0 0\r\n\r\n"), "line 5 is empty"),
        (replace(AIORTC, "t=0 0", "t=0 0\rx=1"), "carriage return"),
        (replace(AIORTC, "t=0 0", "T=0 0"), "'<letter>=<value>'"),
        (replace(AIORTC, "t=0 0", "t =0 0"), "'<letter>=<value>'"),
        (replace(AIORTC, "t=0 0", "garbage"), "'<letter>=<value>'"),
        (replace(AIORTC, "t=0 0", "t=0 0\r\nq=unknown"), "'q=' is not allowed"),
        (replace(AIORTC, "t=0 0", "t=0 0\r\nk=clear:secret"), "obsolete"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\nt=0 0"), "'t=' is not allowed"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\nk=prompt"), "obsolete"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\x00"), "NUL"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\udc80"), "not valid Unicode"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\t"), "printable ASCII"),
        (replace(AIORTC, "a=mid:0", "a=mid:é"), "printable ASCII"),
        (replace(AIORTC, "s=-", "s=Lớp\x1c5A"), "control character"),
        (replace(AIORTC, "s=-", "s=Lớp\u20285A"), "control character"),
        (replace(AIORTC, "s=-", "s=Lớp\x855A"), "control character"),
        (replace(AIORTC, "c=IN IP4 127.0.0.1", "c=IN IP4  127.0.0.1"), "(c=)"),
        (replace(AIORTC, "c=IN IP4 127.0.0.1", "c=IN IP7 127.0.0.1"), "(c=)"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\nb=AS"), "(b=)"),
        (replace(AIORTC, "m=audio 36498", "m=audio  36498"), "separated by spaces"),
        (replace(AIORTC, "m=audio 36498 UDP/TLS/RTP/SAVPF 96 9 0 8", "m=audio 36498"), "(m=)"),
        (replace(AIORTC, "m=audio", "m=text"), "only audio and video"),
        (replace(AIORTC, "m=audio 36498", "m=audio 70000"), "port must be"),
        (replace(AIORTC, "m=audio 36498", "m=audio 36498/2"), "port ranges"),
        (replace(AIORTC, "m=audio 36498", "m=audio -1"), "port must be"),
        (replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9", "RTP/AVP 96 9"), "encrypted"),
        (replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9", "UDP/TLS/RTP/SAVPF 128 96 9"), "0 to 127"),
        (replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9", "UDP/TLS/RTP/SAVPF 96 x9"), "0 to 127"),
        (replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9", "UDP/TLS/RTP/SAVPF 74 96 9"), "RTCP"),
        (replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9", "UDP/TLS/RTP/SAVPF 96 96 9"), "twice"),
        (remove_lines(AIORTC, "a=ice-ufrag"), "no a=ice-ufrag"),
        (remove_lines(AIORTC, "a=ice-pwd"), "no a=ice-ufrag and a=ice-pwd"),
        (replace(AIORTC, "a=ice-ufrag:BOHB", "a=ice-ufrag:BOH"), "(a=ice-ufrag)"),
        (replace(AIORTC, "a=ice-ufrag:BOHB", "a=ice-ufrag:BO-B"), "(a=ice-ufrag)"),
        (replace(AIORTC, "a=ice-pwd:E2AyGxSVyxvwiknWgCRJon", "a=ice-pwd:short"), "(a=ice-pwd)"),
        (replace(AIORTC, "a=ice-ufrag:BOHB", "a=ice-ufrag"), "(a=ice-ufrag)"),
        (replace(AIORTC, "a=ice-ufrag:BOHB", "a=ice-ufrag:BOHB\r\na=ice-ufrag:BOHB"), "twice"),
        (
            replace(AIORTC, "a=fingerprint:sha-256 38:DB", "a=fingerprint:sha-256 38:DBX"),
            "(a=fingerprint)",
        ),
        (
            replace(AIORTC, "a=fingerprint:sha-256 38:DB", "a=fingerprint:sha-256  38:DB"),
            "(a=fingerprint)",
        ),
        (
            replace(AIORTC, "a=fingerprint:sha-256 38:DB", "a=fingerprint: sha-256 38:DB"),
            "(a=fingerprint)",
        ),
        (
            replace(AIORTC, "a=fingerprint", "a=fingerprint:sha-256 00\r\na=fingerprint"),
            "32 bytes long",
        ),
        (
            replace(AIORTC, "a=fingerprint", "a=fingerprint:SHA-512 00:11\r\na=fingerprint"),
            "64 bytes long",
        ),
        (replace(AIORTC, "a=setup:actpass", "a=setup:holdconn"), "actpass, active or passive"),
        (replace(AIORTC, "a=setup:actpass", "a=setup"), "(a=setup)"),
        (remove_lines(AIORTC, "a=setup"), "no a=setup"),
        (replace(AIORTC, "a=setup:actpass", "a=setup:actpass\r\na=setup:active"), "twice"),
        (remove_lines(AIORTC, "a=rtcp-mux"), "no a=rtcp-mux"),
        (replace(AIORTC, "a=rtcp-mux", "a=rtcp-mux:yes"), "takes no value"),
        (remove_lines(AIORTC, "a=mid"), "no a=mid"),
        (replace(AIORTC, "a=mid:1", "a=mid:0"), "two media sections have a=mid:0"),
        (replace(AIORTC, "a=mid:1", "a=mid:" + "1" * 17), "longer than 16"),
        (replace(AIORTC, "a=mid:1", "a=mid:1\r\na=mid:2"), "twice"),
        (replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 7"), "names mid 7"),
        (replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 0 1"), "names a mid twice"),
        (
            replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0\r\na=group:BUNDLE 1"),
            "more than one a=group:BUNDLE",
        ),
        (replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0"), "one a=group:BUNDLE"),
        (remove_lines(AIORTC, "a=group:BUNDLE"), "one a=group:BUNDLE"),
        (
            replace(AIORTC, "a=ssrc:173137116 cname", "a=ssrc:3149209808 cname"),
            "names an SSRC without a=ssrc",
        ),
        (
            replace(AIORTC, "a=mid:1", "a=mid:1\r\na=ssrc:3149209808 cname:x"),
            "used by two media sections",
        ),
        (replace(AIORTC, "a=ssrc:3149209808 cname", "a=ssrc:4294967296 cname"), "32-bit"),
        (replace(AIORTC, "a=ssrc:3149209808 cname:", "a=ssrc:3149209808 cname "), "(a=ssrc)"),
        (replace(AIORTC, "a=ssrc-group:FID", "a=ssrc-group:SIM"), "simulcast"),
        (
            replace(
                AIORTC,
                "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
                "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid attr",
            ),
            "(a=extmap)",
        ),
        (replace(AIORTC, "a=extmap:2 ", "a=extmap:15 "), "RFC 8285"),
        (replace(AIORTC, "a=extmap:2 ", "a=extmap:0 "), "RFC 8285"),
        (replace(AIORTC, "a=extmap:2 ", "a=extmap:256 "), "RFC 8285"),
        (replace(AIORTC, "a=extmap:2 ", "a=extmap:1 "), "names two extensions"),
        (replace(AIORTC, "a=extmap:3 ", "a=extmap:2 "), "in one bundle"),
        (replace(AIORTC, "a=extmap:2 ", "a=extmap:2/both "), "(a=extmap)"),
        (
            replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1\r\na=extmap:9 urn:x"),
            "not allowed at the session level",
        ),
        (
            replace(AIORTC, "a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1\r\na=mid:0"),
            "not allowed at the session level",
        ),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=group:BUNDLE 0"), "inside a media section"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=ice-lite"), "inside a media section"),
        (replace(AIORTC, "a=sendonly", "a=sendonly\r\na=recvonly"), "more than one direction"),
        (replace(AIORTC, "a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus/0/2"), "clock rate"),
        (replace(AIORTC, "a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus/48000/0"), "channel"),
        (replace(AIORTC, "a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus"), "(a=rtpmap)"),
        (replace(AIORTC, "a=rtpmap:96 opus/48000/2", "a=rtpmap:96 opus/48000/2/1"), "(a=rtpmap)"),
        (replace(AIORTC, "a=rtpmap:96 opus/48000/2", "a=rtpmap:96  opus/48000/2"), "(a=rtpmap)"),
        (
            replace(
                AIORTC,
                "a=rtpmap:96 opus/48000/2",
                "a=rtpmap:96 opus/48000/2\r\na=rtpmap:96 opus/48000/2",
            ),
            "mapped twice",
        ),
        (remove_lines(AIORTC, "a=rtpmap:96"), "payload type 96 has no a=rtpmap"),
        (
            replace(
                remove_lines(AIORTC, "a=rtpmap:9 "),
                "a=rtpmap:96 opus/48000/2",
                "a=rtpmap:96 opus/48000/2\r\na=fmtp:9 bitrate=64000",
            ),
            "a=fmtp:9 has no matching a=rtpmap:9",
        ),
        (replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 apt=x97"), "'apt' must be a number"),
        (replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 apt="), "'apt' must be a number"),
        (
            replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 apt=97;minptime=ten"),
            "'minptime' must be a number",
        ),
        (replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 apt=96"), "needs a valid apt"),
        (replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 x=1"), "needs a valid apt"),
        (
            replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98 apt=97\r\na=fmtp:98 apt=97"),
            "two a=fmtp lines",
        ),
        (replace(AIORTC, "a=fmtp:98 apt=97", "a=fmtp:98"), "(a=fmtp)"),
        (
            replace(AIORTC, "a=rtcp-fb:97 nack pli", "a=rtcp-fb:55 nack pli"),
            "55 is not on the m= line",
        ),
        (replace(AIORTC, "a=rtcp-fb:97 nack pli", "a=rtcp-fb:97"), "(a=rtcp-fb)"),
        (replace(AIORTC, "a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:99999 IN IP4 0.0.0.0"), "a=rtcp port"),
        (replace(AIORTC, "a=rtcp:9 IN IP4 0.0.0.0", "a=rtcp:9 IN IP4"), "(a=rtcp)"),
        (
            replace(
                AIORTC,
                "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp",
                "a=candidate:16572de626da4e5384a0ce2d0d93678a 0 udp",
            ),
            "component",
        ),
        (replace(AIORTC, "typ host", "typ hots"), "the type must be"),
        (replace(AIORTC, "a=end-of-candidates", "a=candidate"), "(a=candidate)"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=sctp-port:5000"), "data channels"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=max-message-size:262144"), "data channels"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=simulcast:send h;l"), "simulcast"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=ptime:x"), "(a=ptime)"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na="), "not a valid token"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=:x"), "not a valid token"),
        (replace(AIORTC, "a=msid-semantic:WMS *", "a=msid-semantic"), "(a=msid-semantic)"),
        (replace(AIORTC, "a=group:BUNDLE 0 1", "a=group"), "(a=group)"),
        (replace(AIORTC, "a=mid:0", "a=mid:0\r\na=msid:a b c"), "(a=msid)"),
        ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "no m= line"),
    ],
)
def test_each_rule(sdp: str, fragment: str) -> None:
    bad(sdp, fragment)


def test_size_limit() -> None:
    padding = "a=x-pad:" + "p" * 200 + "\r\n"
    big = replace(AIORTC, "a=mid:0\r\n", "a=mid:0\r\n" + padding * 320)
    assert len(big) > DEFAULT_LIMITS.max_sdp_bytes
    bad(big, f"larger than {DEFAULT_LIMITS.max_sdp_bytes} bytes")
    wide = replace(AIORTC, "s=-", "s=" + "ệ" * 20_000)  # fewer characters than bytes
    assert len(wide) < DEFAULT_LIMITS.max_sdp_bytes < len(wide.encode())
    bad(wide, "larger than")
    check_offer(replace(AIORTC, "s=-", "s=Lớp 5A – Toán"))  # Unicode in s= is fine
    check_offer(big, Limits(max_sdp_bytes=96 * 1024))


def test_not_text() -> None:
    assert refused(b"v=0\r\n").code == ErrorCode.BAD_SDP  # type: ignore[arg-type]


def _with_extra_sections(count: int) -> str:
    extra = []
    for i in range(count):
        mid = str(2 + i)
        section = AIORTC[AIORTC.index("m=audio") : AIORTC.index("m=video")]
        section = section.replace("a=mid:0", f"a=mid:{mid}")
        section = section.replace("a=ssrc:3149209808", f"a=ssrc:{1000 + i}")
        extra.append(section)
    mids = " ".join(str(m) for m in range(2 + count))
    return replace(AIORTC, "a=group:BUNDLE 0 1", f"a=group:BUNDLE {mids}") + "".join(extra)


def test_too_many_tracks_in_an_offer_but_not_in_an_answer() -> None:
    check_offer(_with_extra_sections(2))  # four m-lines: the limit
    exc = refused(_with_extra_sections(3))
    assert exc.code == ErrorCode.TOO_MANY_TRACKS
    assert "4" in exc.message
    check_offer(_with_extra_sections(3), Limits(m_lines_per_publish=5))
    # an answer's m-line count is the server's offer's: no limit there
    answer = _with_extra_sections(3).replace("a=setup:actpass", "a=setup:active")
    assert len(check_answer(answer).sections) == 5


def test_too_many_candidates_in_one_section() -> None:
    line = "a=candidate:1 1 udp 2130706431 127.0.0.1 {} typ host\r\n"
    many = "".join(line.format(10000 + i) for i in range(51))
    bad(replace(AIORTC, "a=end-of-candidates", many + "a=end-of-candidates"), "more than 50")
    fifty = "".join(line.format(10000 + i) for i in range(49))  # plus aiortc's own one
    check_offer(replace(AIORTC, "a=end-of-candidates", fifty + "a=end-of-candidates"))


# --- codecs --------------------------------------------------------------------------------


def _video_only(codecs: str) -> str:
    """The aiortc offer with its video m-line offering exactly the given payload types."""
    sdp = replace(
        AIORTC,
        "m=video 57678 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102",
        f"m=video 57678 UDP/TLS/RTP/SAVPF {codecs}",
    )
    keep = set(codecs.split())
    lines = [
        line
        for line in sdp.split("\r\n")
        if not (
            line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"))
            and line.split(":")[1].split(" ")[0] not in keep
            and line.split(":")[1].split(" ")[0] in {"97", "98", "99", "100", "101", "102"}
        )
    ]
    return "\r\n".join(lines)


def test_video_codec_choice() -> None:
    check_offer(_video_only("97 98"))  # VP8
    check_offer(_video_only("99"))  # H.264 baseline
    check_offer(_video_only("101"))  # H.264 constrained baseline
    for high in ("640c1f", "64001f", "4d001f", "42e0ff"):  # high, main, unknown level
        sdp = _video_only("101").replace("profile-level-id=42e01f", f"profile-level-id={high}")
        assert refused(sdp).code == ErrorCode.UNSUPPORTED_CODEC, high
    mode0 = _video_only("101").replace("packetization-mode=1", "packetization-mode=0")
    assert refused(mode0).code == ErrorCode.UNSUPPORTED_CODEC
    rtx_only = _video_only("98 102").replace("apt=97", "apt=102").replace("apt=101", "apt=98")
    assert refused(rtx_only).code == ErrorCode.UNSUPPORTED_CODEC


def test_constrained_baseline_as_main_profile_is_forwardable() -> None:
    sdp = _video_only("101").replace("profile-level-id=42e01f", "profile-level-id=4de01f")
    check_offer(sdp)


def test_audio_codec_choice() -> None:
    pcmu_only = replace(AIORTC, "UDP/TLS/RTP/SAVPF 96 9 0 8", "UDP/TLS/RTP/SAVPF 9 0 8")
    pcmu_only = remove_lines(pcmu_only, "a=rtpmap:96")
    exc = refused(pcmu_only)
    assert exc.code == ErrorCode.UNSUPPORTED_CODEC
    assert "audio" in exc.message and "Opus" in exc.message
    upper = replace(AIORTC, "opus/48000/2", "OPUS/48000/2")
    check_offer(upper)  # encoding names are case-insensitive (RFC 8866 §6.6)
    wrong_rate = replace(
        pcmu_only.replace("SAVPF 9 0 8", "SAVPF 96 9 0 8"),
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 opus/8000/2\r\na=rtpmap:0 PCMU/8000",
    )
    assert refused(wrong_rate).code == ErrorCode.UNSUPPORTED_CODEC


# --- rejected sections, bundle inheritance, answers ----------------------------------------


TRANSPORT = (
    "a=ice-ufrag:BOHB\r\n"
    "a=ice-pwd:E2AyGxSVyxvwiknWgCRJon\r\n"
    "a=fingerprint:sha-256 38:DB:95:1B:BC:5E:2B:5C:82:28:71:35:B6:AC:A7:16:4B:19:BA:FB:31:56:01:"
    "A4:45:22:28:D5:DF:8A:C3:11\r\n"
    "a=setup:actpass\r\n"
    "a=rtcp-mux\r\n"
)


def test_rejected_section_needs_no_codec() -> None:
    rejected = "m=video 0 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:2\r\n"
    summary = check_offer(AIORTC + rejected + TRANSPORT)
    assert summary.sections[2].rejected and not summary.sections[2].sends
    assert summary.sections[2].codecs == ()
    assert len(summary.active_sections) == 2
    SessionDescription.parse(AIORTC + rejected + TRANSPORT)


def test_rejected_section_still_needs_transport_attributes() -> None:
    """aiortc 1.16 checks ICE credentials and rtcp-mux on every section, rejected or not."""
    rejected = "m=video 0 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\na=mid:2\r\n"
    bad(AIORTC + rejected, "media section 2 (line 69) has no a=ice-ufrag")


def test_bundle_only_section_is_active() -> None:
    video = AIORTC[AIORTC.index("m=video") :].replace("m=video 57678", "m=video 0")
    video = video.replace("a=mid:1", "a=mid:1\r\na=bundle-only")
    summary = check_offer(AIORTC[: AIORTC.index("m=video")] + video)
    assert not summary.sections[1].rejected and summary.sections[1].sends


def test_transport_attributes_are_not_inherited_from_the_bundle_tag() -> None:
    """RFC 8843 §7.3.1 would allow it in an answer; aiortc 1.16 would then raise ValueError."""
    first = ANSWER.index("m=video")
    video = "\r\n".join(
        line
        for line in ANSWER[first:].split("\r\n")
        if not line.startswith(("a=ice-", "a=fingerprint", "a=setup"))
    )
    bad(ANSWER[:first] + video, "media section 1 (line 23) has no a=ice-ufrag", answer=True)
    no_mux = remove_lines(ANSWER[:first], "a=rtcp-mux") + ANSWER[first:]
    bad(no_mux, "media section 0 (line 8) has no a=rtcp-mux", answer=True)


def test_rtcp_mux_is_media_level() -> None:
    session_mux = replace(remove_lines(AIORTC, "a=rtcp-mux"), "t=0 0", "t=0 0\r\na=rtcp-mux")
    bad(session_mux, "(a=rtcp-mux): this attribute is not allowed at the session level")


def test_session_level_transport_attributes() -> None:
    summary = check_offer(FIREFOX)
    assert all(s.setup == "actpass" for s in summary.sections)
    no_fingerprint = remove_lines(FIREFOX, "a=fingerprint")
    bad(no_fingerprint, "no a=fingerprint")


def test_answer_must_choose_a_dtls_role() -> None:
    bad(ANSWER.replace("a=setup:active", "a=setup:actpass"), "answer must use", answer=True)
    check_answer(ANSWER.replace("a=setup:active", "a=setup:passive"))


def test_offer_setup_values() -> None:
    for value in ("active", "passive"):
        check_offer(AIORTC.replace("a=setup:actpass", f"a=setup:{value}"))


def test_answer_checks_the_same_grammar() -> None:
    bad(remove_lines(ANSWER, "a=ice-pwd"), "a=ice-pwd", answer=True)
    bad(ANSWER.replace("a=mid:1", "a=mid:0"), "two media sections", answer=True)


def test_summary_is_immutable() -> None:
    summary = check_offer(AIORTC)
    assert isinstance(summary, SdpSummary)
    with pytest.raises(AttributeError):
        summary.sections[0].mid = "x"  # type: ignore[misc]
    assert hash(summary.sections[0].codecs[0])


# --- what the guard accepts, aiortc applies -------------------------------------------------


@pytest.mark.parametrize("name", VALID_OFFERS)
async def test_accepted_offers_apply_to_a_real_aiortc_peer(name: str) -> None:
    """The guard's promise, end to end: a real RTCPeerConnection takes the offer and answers.

    Candidates are first filtered to loopback (as the server does), so no mDNS name is
    resolved and nothing is sent off 127.0.0.1; no local description is set, so nothing is
    gathered or checked.
    """
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from media._aiortc import set_host_addresses

    def on_loopback(candidate: Candidate) -> bool:
        return candidate.ip_address is not None and candidate.ip_address.is_loopback

    offer = filter_candidates(load(name), on_loopback)
    summary = check_offer(offer)
    set_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        answer = await pc.createAnswer()
    finally:
        await pc.close()
    kinds = [t.kind for t in pc.getTransceivers()]
    assert kinds == [s.kind for s in summary.sections]
    assert "m=audio" in answer.sdp and "m=video" in answer.sdp
