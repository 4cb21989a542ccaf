"""``lophoc`` — the command line.

``lophoc serve`` runs the server on the embedded defaults (SQLite in ``./var``, in-process state,
HTTPS with a self-signed certificate) and prints the addresses to open.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

import ifaddr
import uvicorn

from media.ice import IceSettings

from .app import create_app
from .config import Settings, parse_networks
from .tls import ensure_self_signed

WS_MAX_SIZE = 64 * 1024  # signaling frame limit (docs/protocol.md); bigger frames close 1009


def lan_addresses() -> list[str]:
    """IPv4 addresses of this machine other than loopback (where phones can reach it)."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lophoc", description="Live online lessons server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    serve.add_argument(
        "--port", type=int, default=None, help="port (default 8443, or 8080 with --no-tls)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var"),
        help="where the SQLite file and the self-signed certificate live (default ./var)",
    )
    serve.add_argument(
        "--db",
        dest="database_url",
        default=None,
        help="database URL, e.g. postgresql+asyncpg://user@host/db (default: SQLite in the data dir)",
    )
    serve.add_argument(
        "--redis",
        dest="redis_url",
        default=None,
        help="Redis URL for state shared by several nodes (default: in-process)",
    )
    tls = serve.add_mutually_exclusive_group()
    tls.add_argument(
        "--no-tls",
        action="store_true",
        help="plain HTTP, for running behind a TLS-terminating reverse proxy",
    )
    tls.add_argument("--cert", type=Path, default=None, help="TLS certificate (PEM); with --key")
    serve.add_argument("--key", type=Path, default=None, help="TLS private key (PEM)")
    serve.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        help="an extra Origin allowed to open the WebSocket (repeatable)",
    )
    serve.add_argument(
        "--ice-address",
        action="append",
        default=[],
        help="local address to gather ICE host candidates on (repeatable; default: every non-loopback address)",
    )
    serve.add_argument(
        "--ice-public-address",
        default=None,
        help="public address to announce instead of the host address (1:1 NAT, e.g. a cloud server)",
    )
    serve.add_argument(
        "--ice-accept",
        action="append",
        default=[],
        help="remote network (CIDR) to accept ICE candidates and media from (repeatable; default: any)",
    )
    serve.add_argument(
        "--stun",
        action="append",
        default=[],
        help="STUN server URL, e.g. stun:stun.example.org:3478 (default: none)",
    )
    serve.add_argument(
        "--turn",
        action="append",
        default=[],
        help="TURN server as URL,USERNAME,CREDENTIAL (default: none)",
    )
    serve.add_argument("--log-level", default="info")
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    if args.cert is not None and args.key is None:
        raise SystemExit("lophoc: --cert needs --key")
    turn = []
    for spec in args.turn:
        parts = spec.split(",")
        if len(parts) != 3:
            raise SystemExit("lophoc: --turn takes URL,USERNAME,CREDENTIAL")
        turn.append((parts[0], parts[1], parts[2]))
    try:
        networks = (
            parse_networks(args.ice_accept) if args.ice_accept else IceSettings().accept_networks
        )
    except ValueError as exc:
        raise SystemExit(f"lophoc: --ice-accept: {exc}") from exc
    ice = IceSettings(
        addresses=tuple(args.ice_address) or None,
        public_address=args.ice_public_address,
        accept_networks=networks,
        stun_servers=tuple(args.stun),
        turn_servers=tuple(turn),
    )
    tls = not args.no_tls
    return Settings(
        host=args.host,
        port=args.port if args.port is not None else (8443 if tls else 8080),
        tls=tls,
        cert=args.cert,
        key=args.key,
        data_dir=args.data_dir,
        database_url=args.database_url,
        redis_url=args.redis_url,
        allowed_origins=tuple(args.allowed_origin),
        ice=ice,
    )


def urls_to_open(settings: Settings) -> list[str]:
    scheme = "https" if settings.tls else "http"
    hosts = ["localhost"]
    if settings.host in ("0.0.0.0", "::"):
        hosts += lan_addresses()
    elif settings.host not in ("127.0.0.1", "localhost"):
        hosts = [settings.host]
    return [f"{scheme}://{h}:{settings.port}/" for h in hosts]


def serve(settings: Settings, log_level: str = "info") -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    certfile = keyfile = None
    if settings.tls:
        if settings.cert is not None:
            certfile, keyfile = settings.cert, settings.key
        else:
            certfile, keyfile = ensure_self_signed(settings.data_dir / "tls", lan_addresses())
    print("lophoc is starting. Open one of:", flush=True)
    for url in urls_to_open(settings):
        print(f"  {url}", flush=True)
    if settings.tls and settings.cert is None:
        print("The certificate is self-signed: each browser asks once to accept it.", flush=True)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        ws_max_size=WS_MAX_SIZE,
        ws_per_message_deflate=False,  # no compression: no compression bombs
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        serve(settings_from_args(args), args.log_level)


if __name__ == "__main__":
    main(sys.argv[1:])
