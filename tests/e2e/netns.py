"""The namespaced LAN of the browser tests lives in ``loadtests/netns.py`` (the weak-link
benchmark builds on it too); this module keeps the tests' import path."""

from loadtests.netns import (
    HOSTS,
    PREFIX,
    ROUTER_ADDRESS,
    Lan,
    NetnsUnavailable,
    remove_stale,
    unavailable_reason,
)

__all__ = [
    "HOSTS",
    "PREFIX",
    "ROUTER_ADDRESS",
    "Lan",
    "NetnsUnavailable",
    "remove_stale",
    "unavailable_reason",
]
