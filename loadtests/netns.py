"""A private LAN made of Linux network namespaces, for tests and benchmarks that need a real
"other machine".

:class:`Lan` builds, with iproute2 and as root, a small Wi-Fi-like network that exists only for
one run and touches none of this machine's own interfaces. With the default hosts (what
``tests/e2e/test_lan.py`` uses)::

    lophoc-e2e-lan-<pid>      the "router": a bridge br0 with 10.77.0.254/24, nothing beyond it
      ├─ veth ── lophoc-e2e-srv-<pid>       eth0 10.77.0.1/24  (the lophoc server)
      ├─ veth ── lophoc-e2e-phone-<pid>     eth0 10.77.0.2/24  (a student's phone)
      ├─ veth ── lophoc-e2e-laptop-<pid>    eth0 10.77.0.3/24  (the teacher's laptop)
      └─ veth ── lophoc-e2e-listener-<pid>  eth0 10.77.0.4/24  (another student's phone)

Every namespace has ``lo`` up and a default route to the router, like a host on a home
network; the router namespace has no other link, so anything addressed beyond the LAN is
dropped there, inside the test's own namespaces. IPv6 is switched off in every namespace (no
link-local chatter; the browsers run with IPv6 candidates off anyway). The names carry the
process's pid, so parallel runs do not collide, and namespaces left behind by a run that was
killed (its pid gone) are removed by the next one. Another set of hosts, another /24 or another
name prefix can be given (``loadtests/netem.py`` builds its weak links on this class: it
overrides :meth:`Lan.attach` to put a delay line between a host and the bridge).

:meth:`Lan.wrapper` writes an executable that runs a program inside one namespace
(``ip netns exec``, which execs in place: the pid and the pipes stay the program's own). Given
to Playwright as ``executable_path`` it starts Chromium "on" that host; Playwright still drives
it over its pipe.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "lophoc-e2e"
ROUTER_ADDRESS = "10.77.0.254"
HOSTS = {"srv": "10.77.0.1", "phone": "10.77.0.2", "laptop": "10.77.0.3", "listener": "10.77.0.4"}
PREFIX_LENGTH = 24


class NetnsUnavailable(RuntimeError):
    """This machine cannot build the LAN (not root, no iproute2, no namespace support)."""


def unavailable_reason() -> str | None:
    """Why :class:`Lan` cannot work here, or ``None`` when it can (tries a namespace)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` (apt-get install iproute2)"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    result = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return f"network namespaces unavailable: {result.stderr.strip()}"
    try:
        veth = _ip("-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "a1")
        if veth.returncode != 0:
            return f"veth pairs unavailable: {veth.stderr.strip()}"
        bridge = _ip("-n", probe, "link", "add", "b0", "type", "bridge")
        if bridge.returncode != 0:
            return f"bridges unavailable: {bridge.stderr.strip()}"
    finally:
        _ip("netns", "del", probe)
    return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def run(*args: str) -> None:
    """Run a command; ``NetnsUnavailable`` with its error output when it fails."""
    _run(*args)


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"`{shlex.join(args)}` failed: {result.stderr.strip()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(namespace: str) -> None:
    for pid in _ip("netns", "pids", namespace).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)


def remove_stale(prefix: str = PREFIX) -> list[str]:
    """Delete ``<prefix>-*-<pid>`` namespaces whose run is gone; returns their names."""
    listing = _ip("netns", "list").stdout
    removed = []
    for line in listing.splitlines():
        name = line.split(" ", 1)[0]
        m = re.fullmatch(rf"{re.escape(prefix)}-[a-z]+-(\d+)", name)
        if m and not _pid_alive(int(m.group(1))):
            _kill_inside(name)
            _ip("netns", "del", name)
            removed.append(name)
    return removed


@dataclass
class Lan:
    """The namespaces of one run; use as a context manager (torn down even on failure).

    ``hosts`` maps a host name (lowercase letters) to its address in ``router_address``'s /24;
    the router namespace is called ``lan``."""

    workdir: Path
    pid: int = field(default_factory=os.getpid)
    created: list[str] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=lambda: dict(HOSTS))
    prefix: str = PREFIX
    router_address: str = ROUTER_ADDRESS
    bridge_multicast: bool = True
    """``False``: the bridge's own interface joins no multicast group (sends no IGMP)."""

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}-{self.pid}"

    def address(self, host: str) -> str:
        return self.hosts[host]

    @property
    def subnet(self) -> str:
        """The LAN's network in CIDR notation, e.g. ``10.77.0.0/24``."""
        return str(ipaddress.ip_network(f"{self.router_address}/{PREFIX_LENGTH}", strict=False))

    def __enter__(self) -> Lan:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> None:
        remove_stale(self.prefix)
        router = self.ns("lan")
        for host in ("lan", *self.hosts):
            _run("ip", "netns", "add", self.ns(host))
            self.created.append(self.ns(host))
            _run(
                "ip",
                "netns",
                "exec",
                self.ns(host),
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            )
            _run("ip", "-n", self.ns(host), "link", "set", "lo", "up")
        _run("ip", "-n", router, "link", "add", "br0", "type", "bridge")
        if not self.bridge_multicast:
            _run("ip", "-n", router, "link", "set", "br0", "multicast", "off")
            _run(
                *("ip", "netns", "exec", router, "sysctl", "-qw"),
                "net.ipv4.igmp_link_local_mcast_reports=0",
            )
        _run(
            "ip",
            "-n",
            router,
            "addr",
            "add",
            f"{self.router_address}/{PREFIX_LENGTH}",
            "dev",
            "br0",
        )
        _run("ip", "-n", router, "link", "set", "br0", "up")
        for host, address in self.hosts.items():
            port = f"v-{host}"
            # Both ends are created inside the run's namespaces, never in this machine's own.
            _run(
                "ip",
                "-n",
                router,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.ns(host),
            )
            self.attach(host, port)
            _run(
                "ip",
                "-n",
                self.ns(host),
                "addr",
                "add",
                f"{address}/{PREFIX_LENGTH}",
                "dev",
                "eth0",
            )
            _run("ip", "-n", self.ns(host), "link", "set", "eth0", "up")
            _run("ip", "-n", self.ns(host), "route", "add", "default", "via", self.router_address)

    def attach(self, host: str, port: str) -> None:
        """Connect ``host``'s router-side veth ``port`` to the LAN: here, straight to the bridge."""
        router = self.ns("lan")
        _run("ip", "-n", router, "link", "set", port, "master", "br0")
        _run("ip", "-n", router, "link", "set", port, "up")

    def down(self) -> None:
        for name in reversed(self.created):
            # Processes still inside would keep a deleted namespace alive: callers stop theirs
            # first; anything left is killed here.
            _kill_inside(name)
            _ip("netns", "del", name)
        self.created.clear()

    def command(self, host: str, *argv: str) -> list[str]:
        """``argv`` run inside ``host``'s namespace (``lan`` is the router)."""
        return ["ip", "netns", "exec", self.ns(host), *argv]

    def wrapper(self, host: str, program: str) -> Path:
        """An executable that runs ``program`` (with its arguments) inside ``host``."""
        path = self.workdir / f"in-{host}-{Path(program).name}"
        path.write_text(
            "#!/bin/sh\n"
            f'exec ip netns exec {shlex.quote(self.ns(host))} {shlex.quote(program)} "$@"\n'
        )
        path.chmod(0o755)
        return path
