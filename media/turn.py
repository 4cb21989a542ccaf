"""TURN for students behind school firewalls: credentials minted per participant.

A school network that blocks outgoing UDP, or lets only web ports out, leaves a browser no path
to the media server. A TURN server (RFC 8656) on TCP, or TLS on 443, relays for it. lophoc
supports coturn (Debian's ``coturn`` package; ``docs/turn.md`` has the configuration to ship)
in its shared-secret mode — the scheme of draft-uberti-behave-turn-rest, which coturn calls
``use-auth-secret``: lophoc and coturn share a secret, and each participant gets, in its join
response, a username ``<expiry as Unix time>:<participant id>`` and the password
``base64(HMAC-SHA1(secret, username))``. coturn checks the HMAC and refuses the credential
once the expiry has passed, so a credential found later in a browser's memory or a log opens
nothing, and lophoc stores no TURN password anywhere.

The URLs are given to browsers as they are, so they name the TURN server as students' browsers
reach it (its public name or address); each must be ``turn:`` or ``turns:`` with a host, an
optional port and an optional ``?transport=udp|tcp``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Final

TURN_URL: Final = re.compile(
    r"^turns?:(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?(?:\?transport=(?:udp|tcp))?$"
)
MIN_SECRET_CHARS: Final = 16
DEFAULT_TTL: Final = 6 * 3600.0
"""How long a minted credential is good for (seconds): a school day's lessons and their
reconnections; a new join mints a new one."""


@dataclass(frozen=True)
class TurnSettings:
    urls: tuple[str, ...]
    secret: str
    """coturn's ``static-auth-secret``, as written there."""
    ttl: float = DEFAULT_TTL

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("at least one TURN URL is needed")
        for url in self.urls:
            if not TURN_URL.match(url):
                raise ValueError(
                    f"{url!r} is not a TURN URL (turn: or turns:, a host, an optional port "
                    "and ?transport=udp or tcp)"
                )
        if len(self.secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the TURN secret must be at least {MIN_SECRET_CHARS} characters")
        if not 60 <= self.ttl <= 7 * 86400:
            raise ValueError("the TURN credential lifetime must be between 60 s and 7 days")

    def __repr__(self) -> str:  # never print the secret
        return f"TurnSettings(urls={self.urls!r}, secret='…', ttl={self.ttl!r})"

    def credentials(self, participant_id: str, now: float) -> tuple[str, str]:
        """(username, password) for ``participant_id``, valid until ``now + ttl`` (Unix time)."""
        username = f"{int(now + self.ttl)}:{participant_id}"
        digest = hmac.new(self.secret.encode(), username.encode(), hashlib.sha1).digest()
        return username, base64.b64encode(digest).decode("ascii")

    def ice_servers(self, participant_id: str, now: float) -> list[dict[str, Any]]:
        """The ``ice_servers`` entry of a join response (``RTCIceServer`` as browsers take it)."""
        username, credential = self.credentials(participant_id, now)
        return [{"urls": list(self.urls), "username": username, "credential": credential}]
