"""ICE candidates: parse_candidate (RFC 8839 §5.1) and filter_candidates."""

from __future__ import annotations

import ipaddress

import pytest

from signaling.errors import ErrorCode, SignalingError
from signaling.sdp_guard import (
    Candidate,
    candidate_is_usable,
    check_offer,
    filter_candidates,
    parse_candidate,
)
from tests.signaling.sdp_fixtures import load

CHROME = load("chrome-offer.sdp")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def on_loopback(candidate: Candidate) -> bool:
    address = candidate.ip_address
    return address is not None and address in LOOPBACK


# --- parsing -------------------------------------------------------------------------------


def test_chrome_host_candidate() -> None:
    c = parse_candidate(
        "candidate:1467250027 1 udp 2122260223 192.168.1.23 56143 typ host generation 0 "
        "network-id 1 network-cost 10"
    )
    assert c == Candidate(
        foundation="1467250027",
        component=1,
        transport="udp",
        priority=2122260223,
        ip="192.168.1.23",
        port=56143,
        type="host",
        extensions=(("generation", "0"), ("network-id", "1"), ("network-cost", "10")),
    )
    assert c.ip_address == ipaddress.ip_address("192.168.1.23") and not c.is_mdns
    assert candidate_is_usable(c)


@pytest.mark.parametrize("prefix_and_ending", [("a=", ""), ("", "\r\n"), ("a=", "\n"), ("", "")])
def test_with_or_without_a_prefix(prefix_and_ending: tuple[str, str]) -> None:
    prefix, ending = prefix_and_ending
    c = parse_candidate(f"{prefix}candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host{ending}")
    assert (c.ip, c.port) == ("127.0.0.1", 5000)


def test_srflx_relay_tcp_ipv6_mdns() -> None:
    srflx = parse_candidate(
        "candidate:842163049 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr 192.168.1.23 "
        "rport 56143 generation 0 network-cost 999"
    )
    assert (srflx.type, srflx.related_address, srflx.related_port) == (
        "srflx",
        "192.168.1.23",
        56143,
    )
    relay = parse_candidate(
        "candidate:3 1 UDP 16777215 198.51.100.9 3478 typ relay raddr 0.0.0.0 rport 0"
    )
    assert (relay.type, relay.transport) == ("relay", "udp")  # Firefox writes UDP
    tcp = parse_candidate(
        "candidate:467250027 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0"
    )
    assert (tcp.transport, tcp.tcp_type) == ("tcp", "active") and not candidate_is_usable(tcp)
    v6 = parse_candidate("candidate:5 1 udp 2122265343 fd00::1:2 50000 typ host")
    assert v6.ip_address == ipaddress.ip_address("fd00::1:2")
    mdns = parse_candidate(
        "candidate:2999745851 1 udp 2122129151 4d2e6c1a-8b3f-4e7a-9c5d-1f2a3b4c5d6e.local "
        "61540 typ host generation 0"
    )
    assert mdns.is_mdns and mdns.ip_address is None and not candidate_is_usable(mdns)
    rtcp = parse_candidate("candidate:1 2 udp 2130706430 127.0.0.1 5001 typ host")
    assert not candidate_is_usable(rtcp)
    name = parse_candidate("candidate:1 1 udp 2130706431 turn.example.org 3478 typ host")
    assert not name.is_mdns and not candidate_is_usable(name)  # never resolved


def test_to_sdp_round_trip() -> None:
    for section in check_offer(CHROME).sections:
        for c in section.candidates:
            assert parse_candidate(c.to_sdp()) == c
    line = (
        "candidate:842163049 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr "
        "192.168.1.23 rport 56143 generation 0 network-cost 999"
    )
    assert parse_candidate(line).to_sdp() == line


@pytest.mark.parametrize(
    "line",
    [
        "",
        "candidate:",
        "candidate",
        "a=candidate",
        "x=candidate:1 1 udp 1 127.0.0.1 1 typ host",
        "candidate:1 1 udp 1 127.0.0.1 1 typ",
        "candidate:1 1 udp 1 127.0.0.1 1 host",
        "candidate:1 1 udp 1 127.0.0.1 1 type host",
        "candidate:1 1 udp 1 127.0.0.1 1 typ nat",
        "candidate:1 0 udp 1 127.0.0.1 1 typ host",
        "candidate:1 257 udp 1 127.0.0.1 1 typ host",
        "candidate:1 0001 udp 1 127.0.0.1 1 typ host",
        "candidate:1 x udp 1 127.0.0.1 1 typ host",
        "candidate:1 1 udp 4294967296 127.0.0.1 1 typ host",
        "candidate:1 1 udp -1 127.0.0.1 1 typ host",
        "candidate:1 1 udp 1 127.0.0.1 65536 typ host",
        "candidate:1 1 udp 1 127.0.0.1 -5 typ host",
        "candidate:1 1 udp 1 127.0.0.1 ٣ typ host",
        "candidate:1 1 udp 1 bad_address! 1 typ host",
        "candidate:1 1 udp 1 -leading.example 1 typ host",
        "candidate:1 1 udp 1 " + "a" * 64 + ".example 1 typ host",
        "candidate:1 1 u,dp 1 127.0.0.1 1 typ host",
        "candidate:" + "f" * 33 + " 1 udp 1 127.0.0.1 1 typ host",
        "candidate:f-f 1 udp 1 127.0.0.1 1 typ host",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host generation",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host raddr nowhere! rport 1",
        "candidate:1 1 udp 1 127.0.0.1 1 typ srflx raddr 1.2.3.4 rport 99999",
        "candidate:1 1 udp 1 127.0.0.1 1 typ srflx raddr 1.2.3.4 raddr 1.2.3.4",
        "candidate:1 1 tcp 1 127.0.0.1 1 typ host tcptype sideways",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host ext\x00 1",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host ext é",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host\x00",
        "candidate:1 1 udp 1 127.0.0.1 1 typ host " + "x 1 " * 200,
    ],
)
def test_garbage_is_bad_candidate(line: str) -> None:
    with pytest.raises(SignalingError) as info:
        parse_candidate(line)
    assert info.value.code == ErrorCode.BAD_CANDIDATE
    assert info.value.message.startswith("Invalid ICE candidate: ")


def test_not_text_is_bad_candidate() -> None:
    with pytest.raises(SignalingError) as info:
        parse_candidate(None)  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.BAD_CANDIDATE


# --- filtering -----------------------------------------------------------------------------


def test_filter_keeps_only_usable_accepted_candidates_and_every_other_byte() -> None:
    filtered = filter_candidates(CHROME, on_loopback)
    kept = [line for line in filtered.split("\r\n") if line.startswith("a=candidate:")]
    assert kept == [
        "a=candidate:3261573364 1 udp 2122194687 127.0.0.1 51712 typ host generation 0 network-id 2"
    ]
    expected = "".join(
        line
        for line in CHROME.splitlines(keepends=True)
        if not line.startswith("a=candidate:") or "127.0.0.1 51712" in line
    )
    assert filtered == expected
    assert check_offer(filtered).sections[0].candidates[0].port == 51712


def test_filter_drops_tcp_mdns_and_rtcp_even_when_accepted() -> None:
    filtered = filter_candidates(CHROME, lambda c: True)
    ports = {line.split()[5] for line in filtered.split("\r\n") if line.startswith("a=candidate:")}
    assert ports == {"56143", "51712"}


def test_filter_preserves_line_endings() -> None:
    lf = CHROME.replace("\r\n", "\n")
    assert filter_candidates(lf, on_loopback) == filter_candidates(CHROME, on_loopback).replace(
        "\r\n", "\n"
    )
    no_final = CHROME.rstrip("\r\n")
    assert filter_candidates(no_final, lambda c: True).endswith(no_final[-30:])
    assert filter_candidates("", lambda c: True) == ""
    weird = "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 1 typ host\n\r\nx=1"
    assert filter_candidates(weird, lambda c: True) == weird


def test_filter_drops_unparseable_candidate_lines() -> None:
    sdp = "v=0\r\na=candidate:garbage\r\na=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n"
    assert filter_candidates(sdp, on_loopback) == (
        "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n"
    )


def test_filter_with_nothing_accepted() -> None:
    filtered = filter_candidates(CHROME, lambda c: False)
    assert "a=candidate" not in filtered
    check_offer(filtered)  # still a valid offer: candidates may trickle later
