"""ICE settings: where the server gathers candidates and whom it accepts packets from.

WebRTC makes it easy to send packets where nobody meant them to go: aioice skips 127.0.0.1 and
gathers on every other interface, aiortc falls back to a public STUN server when given no ICE
servers, and browsers offer candidates on every address they have (and send checks from all of
them). A school's server should talk only on the addresses its operator chose, and only to peers
in the networks its operator expects. So:

* host candidates are gathered only on ``addresses`` (default: every non-loopback address
  aioice finds, as on an ordinary server — the CLI narrows it);
* a ``public_address`` (1:1 NAT, as on cloud servers) replaces the host address in the
  candidates the server announces, while the sockets stay bound to the private address;
* remote candidates, incoming STUN checks and every outgoing datagram are limited to
  ``accept_networks``; loopback, link-local, multicast, unspecified and broadcast addresses
  only when a network the operator named (not the catch-all default) contains them — else a
  participant could make the server send STUN checks to its own loopback services or to
  link-local neighbours. Addresses of the school's LAN stay accepted by default (phones on the
  school's Wi-Fi reach the server through them, and a browser on the server's own machine
  offers the server's address); ``--ice-accept`` narrows them;
* trickled candidates are counted per connection and refused beyond ``candidates_per_pc``
  (``media.transport``);
* a remote ``a=end-of-candidates`` is never applied from an SDP: browsers hide their addresses
  behind mDNS names (which the server drops) until a page may use the camera or microphone, so
  a listening phone's candidate list is empty and ICE works only from the peer-reflexive
  candidates its checks reveal. aioice, told "no more candidates" while it knows none, drops
  the component: it then gathers no candidate of its own (an answer without any) or fails at
  once. The end of candidates reaches aioice only through ``Transport.add_candidate(None)``,
  after RFC 8863's patience (``media.transport.END_OF_CANDIDATES_PATIENCE``);
* STUN/TURN servers are used only when configured: never an implicit public one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CANDIDATE_LINE = re.compile(r"^(a=)?candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$")


def is_special(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Addresses no participant's candidate may name unless the operator named them: this
    host's loopback, link-local neighbours, multicast groups, the unspecified address and the
    IPv4 broadcast."""
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip == ipaddress.IPv4Address("255.255.255.255")
    )


@dataclass(frozen=True)
class IceSettings:
    addresses: tuple[str, ...] | None = None
    """Local addresses to gather host candidates on; ``None``: aioice's discovery."""
    public_address: str | None = None
    """Address announced instead of the host address (1:1 NAT)."""
    accept_networks: tuple[IPNetwork, ...] = field(
        default_factory=lambda: (
            ipaddress.ip_network("0.0.0.0/0"),
            ipaddress.ip_network("::/0"),
        )
    )
    """Remote networks candidates and packets are accepted from."""
    stun_servers: tuple[str, ...] = ()
    turn_servers: tuple[tuple[str, str, str], ...] = ()
    """(url, username, credential) of each TURN server."""
    candidates_per_pc: int = 50
    """Trickled candidates one connection may send, accepted or not (``too_many_candidates``
    beyond): a browser has a handful of addresses, and each accepted one costs STUN checks."""

    @classmethod
    def loopback(cls) -> IceSettings:
        """Everything on 127.0.0.1: what tests, benchmarks and demos use."""
        return cls(
            addresses=("127.0.0.1",),
            accept_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        )

    def accepts(self, host: str) -> bool:
        """Whether a remote address lies in the accepted networks (special addresses only in
        a named network: see the module docstring)."""
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        special = is_special(ip)
        return any(
            ip.version == net.version and ip in net and (not special or net.prefixlen > 0)
            for net in self.accept_networks
        )

    def accepts_candidate_line(self, line: str) -> bool:
        """Whether a remote ``candidate:`` line is one the server will try.

        Refused: malformed lines, TCP, RTCP-component (2) candidates — the server answers
        ``rtcp-mux`` — mDNS ``.local`` names, and addresses outside the accepted networks.
        """
        m = _CANDIDATE_LINE.match(line.strip())
        if m is None:
            return False
        component, transport, host = m.group(3), m.group(4), m.group(6)
        if component != "1" or transport.lower() != "udp":
            return False
        if host.endswith(".local"):
            return False
        return self.accepts(host)

    def filter_sdp(self, sdp: str) -> str:
        """Drop the SDP's candidate lines the server would not accept, and its
        ``a=end-of-candidates`` (see the module's docstring); keep all else as is."""
        lines = sdp.splitlines(keepends=True)
        return "".join(
            line
            for line in lines
            if not line.startswith("a=end-of-candidates")
            and (not line.startswith("a=candidate:") or self.accepts_candidate_line(line))
        )

    def announce(self, sdp: str) -> str:
        """The server's SDP with the public address in its host candidates (and ``c=`` lines)."""
        if not self.public_address or not self.addresses:
            return sdp
        out = []
        for line in sdp.splitlines(keepends=True):
            if line.startswith("a=candidate:"):
                m = _CANDIDATE_LINE.match(line.rstrip("\r\n"))
                if m and m.group(6) in self.addresses:
                    parts = line.split(" ")
                    parts[4] = self.public_address
                    line = " ".join(parts)
            elif line.startswith("c=IN IP"):
                for a in self.addresses:
                    line = line.replace(a, self.public_address)
            out.append(line)
        return "".join(out)

    def rtc_configuration(self) -> Any:
        """An ``RTCConfiguration`` that never falls back to a public STUN server."""
        from aiortc import RTCBundlePolicy

        servers = [RTCIceServer(urls=url) for url in self.stun_servers]
        servers += [
            RTCIceServer(urls=url, username=user, credential=cred)
            for url, user, cred in self.turn_servers
        ]
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
