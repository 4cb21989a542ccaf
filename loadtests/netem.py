"""A weak mobile link, emulated on a private namespace LAN, changeable while a lesson runs.

:class:`WeakLan` is a :class:`loadtests.netns.Lan` (namespaces, a bridge, one /24 that exists
only inside them) in which some hosts — the "phones" — reach the bridge through a delay line::

    router namespace:  br0 ── d-<host> ═veth═ q-<host> ◄─ delay line ─► v-<host> ═veth═ eth0 (host)
                                                                          └ tbf (downlink rate)

What can be set per phone (:meth:`WeakLan.shape`), and changed or lifted at any moment:

* **downlink rate** — ``tc tbf`` on ``v-<host>``, the router side of the phone's veth: its
  egress is the phone's downlink. The delay line's packet socket sends into it, so frames queue
  there (``burst 5000``, ``latency 250ms``: a phone network's deep but bounded buffer) and are
  tail-dropped when it is full, and the receiver's bandwidth estimate sees the queueing delay
  grow, as on a real mobile link.
* **downlink loss** — nftables in the phone's own namespace, ``numgen random`` on UDP at the
  *input* hook (so it is lost on the wire as far as both ends can tell: dropping in a sender's
  own output hook only makes ``sendmsg`` fail, and the sender sends again).
* **added round-trip time** — the delay line (``loadtests/delayline.py``) holds every frame
  half the RTT each way. The phone keeps its address, so ICE needs nothing special.

:meth:`WeakLan.uplink_loss` drops a share of the UDP a host sends, at the input hook of the
host receiving it (e.g. the teacher's uplink, dropped at the server).

**The guard.** Every namespace gets an nftables output rule that accepts loopback and the LAN's
/24 and counts and drops anything else; :meth:`WeakLan.escaped` reads the counters and callers
assert they stayed at 0 — a packet meant for the Internet never leaves these namespaces.

Kernels without ``sch_netem`` are the norm here, hence tbf + nftables + a userspace delay line.
Tear-down (:meth:`WeakLan.down`, also on failure) stops the delay lines and deletes every
namespace; namespaces of runs that died are removed by the next run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from loadtests.netns import Lan, NetnsUnavailable, run, unavailable_reason

__all__ = [
    "UNLIMITED",
    "Shaping",
    "WeakLan",
    "weak_link_unavailable_reason",
]

REPO = Path(__file__).resolve().parents[1]
GUARD_TABLE = "lophoc_guard"
EMULATION_TABLE = "lophoc_link"
FIREWALL_TABLE = "lophoc_firewall"
OFFLOADS = ("rx", "tx", "sg", "tso", "gso", "gro")
TBF_BURST = 5000  # bytes
TBF_LATENCY = "250ms"


@dataclass(frozen=True)
class Shaping:
    """What a phone's link does to its downlink: ``None`` / 0 means "not limited"."""

    rate_kbit: int | None = None
    loss_percent: float = 0.0
    rtt_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.rate_kbit is not None and self.rate_kbit <= 0:
            raise ValueError("rate must be positive (None: unlimited)")
        if not 0 <= self.loss_percent < 100:
            raise ValueError("loss must be within [0, 100) %")
        if not 0 <= self.rtt_ms <= 5000:
            raise ValueError("added RTT must be within [0, 5000] ms")

    def describe(self) -> str:
        parts = []
        if self.rate_kbit is not None:
            rate = self.rate_kbit
            parts.append(f"{rate // 1000} Mbit/s" if rate % 1000 == 0 else f"{rate} kbit/s")
        if self.loss_percent:
            parts.append(f"{self.loss_percent:g} % loss")
        if self.rtt_ms:
            parts.append(f"+{self.rtt_ms:g} ms RTT")
        return ", ".join(parts) or "unlimited"


UNLIMITED = Shaping()


def _nft(namespace: str, script: str) -> None:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NetnsUnavailable(f"nft in {namespace} failed: {result.stderr.strip()}\n{script}")


def _nft_json(namespace: str, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-j", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NetnsUnavailable(f"nft -j {' '.join(args)} in {namespace}: {result.stderr.strip()}")
    items: list[dict[str, Any]] = json.loads(result.stdout)["nftables"]
    return items


def weak_link_unavailable_reason() -> str | None:
    """Why :class:`WeakLan` cannot work here (tools, root, namespaces), or ``None``."""
    reason = unavailable_reason()
    if reason is not None:
        return reason
    for tool, package in (("tc", "iproute2"), ("nft", "nftables"), ("ethtool", "ethtool")):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (apt-get install {package})"
    probe = Lan(Path("/nonexistent"), hosts={}, prefix="lophoc-probe")
    try:
        probe.up()
        router = probe.ns("lan")
        probes = (
            ("nft", "add", "table", "inet", "probe"),
            (
                "tc",
                "qdisc",
                "add",
                "dev",
                "br0",
                "root",
                "tbf",
                "rate",
                "300kbit",
                "burst",
                str(TBF_BURST),
                "latency",
                TBF_LATENCY,
            ),
        )
        for argv in probes:
            result = subprocess.run(
                ["ip", "netns", "exec", router, *argv], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                return f"`{' '.join(argv)}` fails: {result.stderr.strip()}"
    except NetnsUnavailable as exc:
        return str(exc)
    finally:
        probe.down()
    return None


@dataclass
class _Line:
    process: subprocess.Popen[str]
    stdin: IO[str]
    stdout: IO[str]

    def ask(self, command: str) -> str:
        self.stdin.write(command + "\n")
        self.stdin.flush()
        answer = self.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise NetnsUnavailable(f"delay line: {command!r} -> {answer!r}")
        return answer


@dataclass
class WeakLan(Lan):
    """A :class:`Lan` whose ``phones`` sit behind a delay line and a shaper, every namespace
    guarded. ``python`` runs the delay lines (this interpreter by default)."""

    phones: tuple[str, ...] = ()
    bridge_multicast: bool = False  # no IGMP from the router: the guard would count it
    python: str = sys.executable
    lines: dict[str, _Line] = field(default_factory=dict)
    shaping: dict[str, Shaping] = field(default_factory=dict)
    uplink: dict[str, float] = field(default_factory=dict)

    def attach(self, host: str, port: str) -> None:
        router = self.ns("lan")
        # No interface of the router joins a multicast group (no IGMP reports to 224.0.0.22,
        # which the guard would count); bridging does not need it.
        run("ip", "-n", router, "link", "set", port, "multicast", "off")
        if host not in self.phones:
            super().attach(host, port)
            return
        run(
            "ip",
            "-n",
            router,
            "link",
            "add",
            f"d-{host}",
            "type",
            "veth",
            "peer",
            "name",
            f"q-{host}",
        )
        for name in (f"d-{host}", f"q-{host}"):
            run("ip", "-n", router, "link", "set", name, "multicast", "off")
        run("ip", "-n", router, "link", "set", f"d-{host}", "master", "br0")
        for name in (f"d-{host}", f"q-{host}", port):
            run("ip", "-n", router, "link", "set", name, "up")
        for name in (f"q-{host}", port):
            run("ip", "-n", router, "link", "set", name, "promisc", "on")

    def up(self) -> None:
        super().up()
        router = self.ns("lan")
        # A packet socket forwards frames as they are: finished checksums, no super-frames.
        for host in self.hosts:
            self._offloads_off(self.ns(host), "eth0")
            self._offloads_off(router, f"v-{host}")
        for host in self.phones:
            self._offloads_off(router, f"d-{host}")
            self._offloads_off(router, f"q-{host}")
        for namespace in (router, *(self.ns(h) for h in self.hosts)):
            self._guard(namespace)
        for host in self.phones:
            self._start_line(host)
            self.shaping[host] = UNLIMITED

    def _offloads_off(self, namespace: str, device: str) -> None:
        argv = ["ip", "netns", "exec", namespace, "ethtool", "-K", device]
        for feature in OFFLOADS:
            argv += [feature, "off"]
        subprocess.run(argv, capture_output=True, text=True, check=False)
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "ethtool", "-k", device],
            capture_output=True,
            text=True,
            check=False,
        )
        on = [
            line.split(":")[0].strip()
            for line in result.stdout.splitlines()
            if line.strip().startswith(
                ("tx-checksumming", "generic-segmentation", "tcp-segmentation-offload")
            )
            and ": on" in line
        ]
        if result.returncode != 0 or on:
            raise NetnsUnavailable(f"{device} in {namespace}: offloads still on: {on or result}")

    def _guard(self, namespace: str) -> None:
        _nft(
            namespace,
            f"""
            table inet {GUARD_TABLE} {{
              counter escaped {{ }}
              set escaped_to {{ type ifname . ipv4_addr . inet_proto; flags dynamic; size 256; }}
              chain output {{
                type filter hook output priority 0; policy accept;
                oifname "lo" accept
                ip daddr {self.subnet} accept
                meta nfproto ipv4 update @escaped_to {{ oifname . ip daddr . meta l4proto }}
                counter name "escaped" drop
              }}
            }}
            """,
        )

    def _start_line(self, host: str) -> None:
        process = subprocess.Popen(
            self.command("lan", self.python, "-m", "loadtests.delayline", f"q-{host}", f"v-{host}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert process.stdin is not None and process.stdout is not None
        line = _Line(process, process.stdin, process.stdout)
        ready = process.stdout.readline().strip()
        if ready != "ready":
            process.kill()
            raise NetnsUnavailable(f"the delay line for {host} did not start ({ready!r})")
        self.lines[host] = line

    def down(self) -> None:
        for line in self.lines.values():
            with contextlib.suppress(OSError):
                line.stdin.close()
            try:
                line.process.wait(3)
            except subprocess.TimeoutExpired:
                line.process.kill()
                line.process.wait(3)
            with contextlib.suppress(OSError):
                line.stdout.close()
        self.lines.clear()
        super().down()

    # -- the knobs ------------------------------------------------------------------------------

    def shape(self, host: str, shaping: Shaping) -> None:
        """Set ``host``'s downlink to ``shaping`` now (replacing what it had)."""
        if host not in self.phones:
            raise ValueError(f"{host} is not behind a delay line (phones: {self.phones})")
        router = self.ns("lan")
        device = f"v-{host}"
        if shaping.rate_kbit is None:
            subprocess.run(
                self.command("lan", "tc", "qdisc", "del", "dev", device, "root"),
                capture_output=True,
                check=False,
            )
        else:
            run(
                *("ip", "netns", "exec", router, "tc", "qdisc", "replace", "dev", device),
                *("root", "tbf", "rate", f"{shaping.rate_kbit}kbit"),
                *("burst", str(TBF_BURST), "latency", TBF_LATENCY),
            )
        self._set_loss(host, shaping.loss_percent, source=None)
        self.lines[host].ask(f"delay {shaping.rtt_ms / 2}")
        self.shaping[host] = shaping

    def lift(self, host: str) -> None:
        """``host``'s downlink back to unlimited."""
        self.shape(host, UNLIMITED)

    def uplink_loss(self, sender: str, percent: float, receiver: str) -> None:
        """Drop ``percent`` % of the UDP ``sender`` sends, at ``receiver``'s input hook."""
        self._set_loss(receiver, percent, source=sender)
        self.uplink[sender] = percent

    def _set_loss(self, receiver: str, percent: float, source: str | None) -> None:
        namespace = self.ns(receiver)
        chain = f"loss_from_{source}" if source else "loss"
        match = f"ip saddr {self.address(source)} " if source else ""
        rule = (
            f"{match}meta l4proto udp numgen random mod 1000 < {round(percent * 10)} "
            'counter name "lost" drop'
            if percent > 0
            else ""
        )
        # Declaring the table and chain first makes this idempotent; then replace the rule.
        _nft(
            namespace,
            f"""
            table inet {EMULATION_TABLE} {{
              counter lost {{ }}
              chain {chain} {{ type filter hook input priority -10; policy accept; }}
            }}
            flush chain inet {EMULATION_TABLE} {chain}
            {f"add rule inet {EMULATION_TABLE} {chain} {rule}" if rule else ""}
            """,
        )

    # -- what happened --------------------------------------------------------------------------

    def block_udp(self, host: str) -> None:
        """A firewall that lets no UDP in or out of ``host`` (loopback aside), as school
        networks that allow only web traffic do; :meth:`udp_blocked` counts what it dropped."""
        _nft(
            self.ns(host),
            f"""
            table inet {FIREWALL_TABLE} {{
              counter blocked {{ }}
              chain output {{
                type filter hook output priority -10; policy accept;
                oifname "lo" accept
                meta l4proto udp counter name "blocked" drop
              }}
              chain input {{
                type filter hook input priority -10; policy accept;
                iifname "lo" accept
                meta l4proto udp counter name "blocked" drop
              }}
            }}
            """,
        )

    def udp_blocked(self, host: str) -> int:
        """UDP packets :meth:`block_udp`'s firewall dropped in ``host``."""
        items = _nft_json(self.ns(host), "list", "counter", "inet", FIREWALL_TABLE, "blocked")
        return sum(int(item["counter"]["packets"]) for item in items if "counter" in item)

    def escaped(self) -> dict[str, int]:
        """Packets the guard dropped in each namespace (all must be 0)."""
        counts = {}
        for namespace in self.created:
            for item in _nft_json(namespace, "list", "counter", "inet", GUARD_TABLE, "escaped"):
                if "counter" in item:
                    counts[namespace] = int(item["counter"]["packets"])
        return counts

    def escaped_to(self) -> dict[str, list[str]]:
        """Where the packets the guard dropped were going (``address/protocol``), per
        namespace that dropped any."""
        found: dict[str, list[str]] = {}
        for namespace in self.created:
            for item in _nft_json(namespace, "list", "set", "inet", GUARD_TABLE, "escaped_to"):
                for element in item.get("set", {}).get("elem", []):
                    value = (
                        element.get("elem", {}).get("val", element)
                        if isinstance(element, dict)
                        else element
                    )
                    concat = value.get("concat", []) if isinstance(value, dict) else []
                    found.setdefault(namespace, []).append("/".join(str(v) for v in concat))
        return found

    def link_counters(self, host: str) -> dict[str, int]:
        """Packets the emulation dropped on ``host``'s downlink so far: at the shaper's full
        queue (``rate_dropped``), by random loss (``loss_dropped``) and in the delay line."""
        rate_dropped = 0
        result = subprocess.run(
            self.command("lan", "tc", "-s", "-j", "qdisc", "show", "dev", f"v-{host}"),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            for qdisc in json.loads(result.stdout):
                if qdisc.get("kind") == "tbf":
                    rate_dropped += int(qdisc.get("drops", 0))
        loss_dropped = 0
        with contextlib.suppress(NetnsUnavailable):
            for item in _nft_json(
                self.ns(host), "list", "counter", "inet", EMULATION_TABLE, "lost"
            ):
                if "counter" in item:
                    loss_dropped = int(item["counter"]["packets"])
        line_dropped = 0
        if host in self.lines:
            stats = json.loads(self.lines[host].ask("stats"))
            line_dropped = sum(int(v["dropped"]) for v in stats.values() if isinstance(v, dict))
        return {
            "rate_dropped": rate_dropped,
            "loss_dropped": loss_dropped,
            "line_dropped": line_dropped,
        }
