"""ICE candidates: capped per connection, and none that names what no participant should reach.

Pass criterion: a connection's 51st trickled candidate is refused with ``too_many_candidates``
(accepted or not, every one counts) and the lesson goes on; with the default accepted networks
(anywhere) candidates naming loopback, link-local, multicast, unspecified or broadcast
addresses are refused and no STUN check goes to them, while the same addresses are accepted
where the operator named a network that holds them (as every loopback test does).
"""

from __future__ import annotations

import ipaddress

import pytest
from aiortc import RTCSessionDescription

from media.ice import IceSettings
from media.service import MediaError, MediaService, MediaSettings
from tests.peers import ColourTrack, loopback_pc

SPECIAL = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "::ffff:127.0.0.1",
    "169.254.10.20",
    "fe80::1",
    "224.0.0.251",
    "ff02::1",
    "0.0.0.0",
    "::",
    "255.255.255.255",
]
ORDINARY = ["192.168.1.23", "10.4.0.7", "172.16.9.1", "203.0.113.9", "2001:db8::5"]


def candidate(host: str, port: int = 40000) -> dict[str, object]:
    return {
        "candidate": f"candidate:1 1 udp 2122260223 {host} {port} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }


def test_the_default_networks_refuse_special_addresses_and_accept_the_rest() -> None:
    ice = IceSettings()
    for host in SPECIAL:
        assert not ice.accepts(host), host
        assert not ice.accepts_candidate_line(str(candidate(host)["candidate"])), host
    for host in ORDINARY:
        assert ice.accepts(host), host


def test_a_named_network_accepts_the_special_addresses_it_holds() -> None:
    assert IceSettings.loopback().accepts("127.0.0.1")
    assert not IceSettings.loopback().accepts("169.254.1.1")
    named = IceSettings(accept_networks=(ipaddress.ip_network("169.254.0.0/16"),))
    assert named.accepts("169.254.1.1") and not named.accepts("192.168.1.1")


async def publishing(service: MediaService) -> None:
    peer = loopback_pc()
    peer.addTrack(ColourTrack((10, 200, 10)))
    await peer.setLocalDescription(await peer.createOffer())
    answer, _ = await service.publish("L1", "p1", peer.localDescription.sdp)
    await peer.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    await peer.close()


async def test_special_addresses_get_no_stun_check_with_the_default_networks() -> None:
    # Gather on loopback only; accept from anywhere, as a server on the default options does.
    service = MediaService(MediaSettings(ice=IceSettings(addresses=("127.0.0.1",))))
    try:
        await publishing(service)
        for port, host in enumerate(SPECIAL, start=40000):
            assert not await service.add_candidate("L1", "p1", "publish", candidate(host, port))
        transport = service.routers["L1"].publish["p1"]
        assert transport.candidates_added == 0
    finally:
        await service.close()


async def test_the_candidates_of_one_connection_are_capped() -> None:
    ice = IceSettings.loopback()
    service = MediaService(MediaSettings(ice=ice))
    try:
        await publishing(service)
        answers = [
            await service.add_candidate("L1", "p1", "publish", candidate("127.0.0.1", 41000 + n))
            for n in range(ice.candidates_per_pc // 2)
        ]
        # Refused ones count too: a flood of junk is still a flood.
        answers += [
            await service.add_candidate("L1", "p1", "publish", candidate("192.0.2.1", 42000 + n))
            for n in range(ice.candidates_per_pc - len(answers))
        ]
        assert answers.count(True) == ice.candidates_per_pc // 2
        with pytest.raises(MediaError) as refused:
            await service.add_candidate("L1", "p1", "publish", candidate("127.0.0.1", 43000))
        assert refused.value.code == "too_many_candidates"
        assert service.routers["L1"].publish["p1"].candidates_added == ice.candidates_per_pc // 2
        # The end of candidates is not a candidate: still taken.
        assert await service.add_candidate("L1", "p1", "publish", None)
    finally:
        await service.close()
