"""``lophoc`` — the command line.

``lophoc serve`` runs the server on the embedded defaults (SQLite in ``./var``, in-process state,
HTTPS with a self-signed certificate) and prints the addresses to open.

``lophoc admin …`` manages the school's records on the same database (``--db`` / ``--data-dir``
as for ``serve``): ``create-admin``, ``create-teacher``, ``reset-password``, ``disable``,
``enable``, ``create-class``, ``assign-teacher``,
``import-roster`` (``.xlsx`` or CSV; ``--dry-run`` shows the changes and every problem, in
Vietnamese or English with ``--lang``), ``export-roster``, ``list-teachers``, ``list-classes``. Passwords are read
from the terminal (or one line of standard input with ``--password-stdin``), never from the
command line, where other users of the machine could see them in the process list.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import ipaddress
import logging
import os
import resource
import stat
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import ifaddr
import uvicorn

from media.ice import IceSettings
from media.turn import TurnSettings

from .app import create_app
from .config import Settings, parse_networks, uvicorn_config
from .tls import ensure_self_signed


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
    serve.add_argument(
        "--turn-url",
        action="append",
        default=[],
        help="a TURN URL students' browsers use, e.g. turns:turn.example.org:443?transport=tcp "
        "(repeatable; with --turn-secret-file; see docs/turn.md)",
    )
    serve.add_argument(
        "--turn-secret-file",
        type=Path,
        default=None,
        help="file holding the secret shared with coturn's static-auth-secret, readable only "
        "by lophoc's user; each participant gets credentials minted from it",
    )
    serve.add_argument(
        "--waiting-room",
        choices=("everyone", "guests", "nobody"),
        default="guests",
        help="who waits to be let in when a lesson starts (default: guests, i.e. everyone "
        "not on the class list); teachers change it in the lesson",
    )
    serve.add_argument(
        "--public-url",
        default=None,
        help="the address students open, e.g. https://hoc.truong.example.vn (behind a proxy or "
        "a NAT); join links are built from it (default: the address each request came to)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        help="address or network (CIDR) of a reverse proxy whose X-Forwarded-For names the "
        "client (repeatable; default: none, not even loopback)",
    )
    serve.add_argument(
        "--link-key-file",
        type=Path,
        default=None,
        help="the key join links are signed with, readable only by lophoc's user (default: "
        "link.key in the data dir, created on first start by a single server; several "
        "servers with --redis need a copy of one key each, or LOPHOC_LINK_SECRET)",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--trace-media",
        action="store_true",
        help="log the media plane's repair and bandwidth decisions (NACKs, probes, holds,"
        " every allocation) with their times, at debug level: for benchmarks, not classes",
    )
    add_admin_parser(sub)
    return parser


def add_admin_parser(sub: Any) -> None:
    admin = sub.add_parser("admin", help="manage teachers, classes and rosters")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=Path("var"),
        help="where the SQLite file lives (default ./var)",
    )
    common.add_argument(
        "--db",
        dest="database_url",
        default=None,
        help="database URL, e.g. postgresql+asyncpg://user@host/db (default: SQLite in the data dir)",
    )
    common.add_argument("--log-level", default="warning")
    for name, role in (("create-admin", "an administrator"), ("create-teacher", "a teacher")):
        command = commands.add_parser(name, parents=[common], help=f"create {role} account")
        command.add_argument("username", help="3-32 of a-z 0-9 . _ -, starting with a letter")
        command.add_argument("--name", required=True, help="full name, e.g. 'Nguyễn Thị Lan'")
        command.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from one line of standard input instead of the terminal",
        )
    reset = commands.add_parser(
        "reset-password",
        parents=[common],
        help="give an account a new password (its open sessions end)",
    )
    reset.add_argument("username")
    reset.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input instead of the terminal",
    )
    for name, what in (
        ("disable", "disable an account: no more logins, its sessions end, its records stay"),
        ("enable", "let a disabled account log in again"),
    ):
        commands.add_parser(name, parents=[common], help=what).add_argument("username")
    create_class = commands.add_parser("create-class", parents=[common], help="create a class")
    create_class.add_argument("name", help="e.g. 5A")
    create_class.add_argument(
        "--teacher", action="append", default=[], help="username of a teacher (repeatable)"
    )
    assign = commands.add_parser(
        "assign-teacher", parents=[common], help="add a teacher to a class"
    )
    assign.add_argument("--class", dest="class_name", required=True)
    assign.add_argument("username")
    importing = commands.add_parser(
        "import-roster",
        parents=[common],
        help="import a class roster from an Excel workbook (.xlsx) or a CSV file",
    )
    importing.add_argument(
        "file",
        type=Path,
        help="a .xlsx or CSV file with a student code column and a name column (Mã HS, Họ và tên, SĐT / student_code, full_name, parent_contact)",
    )
    importing.add_argument("--class", dest="class_name", required=True)
    importing.add_argument(
        "--withdraw-missing",
        action="store_true",
        help="mark students who are not in the file as withdrawn",
    )
    importing.add_argument(
        "--dry-run",
        action="store_true",
        help="show what the import would change, and every problem in the file; change nothing",
    )
    importing.add_argument(
        "--lang",
        choices=("vi", "en"),
        default=None,
        help="language of the problems' explanations (default: vi if $LANG starts with vi, else en)",
    )
    exporting = commands.add_parser(
        "export-roster", parents=[common], help="export a class roster as CSV (UTF-8 with BOM)"
    )
    exporting.add_argument("--class", dest="class_name", required=True)
    exporting.add_argument(
        "--output", type=Path, default=None, help="file to write (default: standard output)"
    )
    commands.add_parser("list-teachers", parents=[common], help="list teacher accounts")
    commands.add_parser("list-classes", parents=[common], help="list classes")


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
    try:
        proxies = parse_networks(args.trusted_proxy)
    except ValueError as exc:
        raise SystemExit(f"lophoc: --trusted-proxy: {exc}") from exc
    turn_relay = turn_settings(args.turn_url, args.turn_secret_file)
    public_url = checked_public_url(args.public_url)
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
        waiting_room=args.waiting_room,
        trusted_proxies=proxies,
        link_key_file=args.link_key_file,
        metrics_token=os.environ.get("LOPHOC_METRICS_TOKEN") or None,
        turn=turn_relay,
        public_url=public_url,
    )


def checked_public_url(url: str | None) -> str | None:
    """``--public-url``: an http(s) origin with an optional path, no query or fragment."""
    if url is None:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SystemExit(
            f"lophoc: --public-url {url!r}: give the address students open, such as "
            "https://hoc.truong.example.vn or https://example.vn/lophoc"
        )
    try:
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise SystemExit(f"lophoc: --public-url {url!r}: {exc}") from exc
    return url.rstrip("/")


def turn_settings(urls: list[str], secret_file: Path | None) -> TurnSettings | None:
    """``--turn-url`` and ``--turn-secret-file`` together, or neither."""
    if not urls and secret_file is None:
        return None
    if not urls or secret_file is None:
        raise SystemExit("lophoc: --turn-url and --turn-secret-file go together")
    try:
        mode = secret_file.stat().st_mode
        secret = secret_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"lophoc: --turn-secret-file: cannot read {secret_file}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(
            f"lophoc: the TURN secret {secret_file} can be read by other users: "
            f"run chmod 600 {secret_file}"
        )
    try:
        return TurnSettings(urls=tuple(urls), secret=secret)
    except ValueError as exc:
        raise SystemExit(f"lophoc: TURN: {exc}") from exc


def urls_to_open(settings: Settings) -> list[str]:
    if settings.public_url is not None:
        return [settings.public_url + "/"]
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
    raise_open_files_limit()
    config = uvicorn_config(
        settings,
        create_app(settings),
        log_level=log_level,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    uvicorn.Server(config).run()


def raise_open_files_limit() -> None:
    """Every socket is a file: take the hard limit the system allows (often 1,024 soft),
    so a crowd of slow connections meets the HTTP limits before the descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise SystemExit("lophoc: no terminal to ask for the password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != first:
        raise SystemExit("lophoc: the passwords differ")
    return first


def run_admin(args: argparse.Namespace) -> int:
    """Run one ``lophoc admin`` command; returns the exit status (1 on a refusal)."""
    from classroom import admin
    from classroom.errors import BAD_ROSTER, ClassroomError

    url = Settings(data_dir=args.data_dir, database_url=args.database_url).db_url
    if args.database_url is None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    command = args.admin_command
    password = (
        read_password(args.password_stdin)
        if command in ("create-admin", "create-teacher", "reset-password")
        else ""
    )
    data = b""
    if command == "import-roster":
        try:
            with args.file.open("rb") as file:
                data = file.read(admin.MAX_ROSTER_BYTES + 1)
        except OSError as exc:
            print(f"lophoc: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 1

    language = _language(getattr(args, "lang", None))
    failed: list[bool] = []

    async def run(action: Callable[[admin.Records], Awaitable[None]]) -> None:
        async with admin.admin_records(url, link_key_file=args.data_dir / "link.key") as records:
            await action(records)

    async def action(records: admin.Records) -> None:
        if command in ("create-admin", "create-teacher"):
            role: Literal["admin", "teacher"] = "admin" if command == "create-admin" else "teacher"
            user = await admin.create_user(records, args.username, args.name, password, role)
            print(f"created {role} {user.username} ({user.full_name})")
        elif command == "reset-password":
            user = await records.accounts.reset_password(args.username, password)
            print(f"new password for {user.username}; their open sessions have ended")
        elif command == "disable":
            user = await records.accounts.disable_user(args.username, by=None)
            print(f"disabled {user.username}: no more logins; their records stay")
        elif command == "enable":
            user = await records.accounts.enable_user(args.username)
            print(f"enabled {user.username}")
        elif command == "create-class":
            created = await admin.create_class(records, args.name, args.teacher)
            print(f"created class {created.name}")
        elif command == "assign-teacher":
            updated = await admin.assign_teacher(records, args.class_name, args.username)
            print(f"{args.username} now teaches {updated.name}")
        elif command == "import-roster" and args.dry_run:
            preview = await admin.preview_roster(
                records, args.class_name, data, withdraw_missing=args.withdraw_missing
            )
            print_preview(preview, language)
            if not preview["ok"]:
                failed.append(True)
        elif command == "import-roster":
            result = await admin.import_roster(
                records, args.class_name, data, withdraw_missing=args.withdraw_missing
            )
            print(
                f"imported: {result.added} added, {result.updated} updated, "
                f"{result.unchanged} unchanged, {result.withdrawn} withdrawn"
            )
        elif command == "export-roster":
            body = await admin.export_roster(records, args.class_name)
            if args.output is None:
                sys.stdout.flush()
                sys.stdout.buffer.write(body)
                sys.stdout.buffer.flush()
            else:
                args.output.write_bytes(body)
        elif command == "list-teachers":
            for teacher in await admin.list_teachers(records):
                print(f"{teacher.username}\t{teacher.full_name}")
        elif command == "list-classes":
            for summary in await admin.list_classes(records):
                teachers = ",".join(summary.teachers) or "-"
                print(f"{summary.school_class.name}\t{summary.students} students\t{teachers}")

    try:
        asyncio.run(run(action))
    except ClassroomError as exc:
        print(f"lophoc: {exc.message}", file=sys.stderr)
        if exc.code == BAD_ROSTER:
            for error in exc.extra["errors"]:
                print(f"  {describe_roster_error(error, language)}", file=sys.stderr)
        return 1
    return 1 if failed else 0


def _language(chosen: str | None) -> str:
    if chosen:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


_WORDS = {
    "en": {
        "file": "file",
        "line": "line",
        "sheet": "sheet",
        "column": "column",
        "added": "added",
        "updated": "updated",
        "unchanged": "unchanged",
        "error": "ERROR",
        "withdraw": "withdrawn",
        "keep": "not in the file, kept",
        "read": "read as",
        "would": "would import: {added} added, {updated} updated, {unchanged} unchanged, "
        "{withdrawn} withdrawn",
        "refused": "nothing would be imported: {errors} problems",
        "full_name": "name",
        "parent_contact": "contact",
        "readmitted": "back in the class",
    },
    "vi": {
        "file": "tệp",
        "line": "dòng",
        "sheet": "trang",
        "column": "cột",
        "added": "thêm mới",
        "updated": "cập nhật",
        "unchanged": "không đổi",
        "error": "LỖI",
        "withdraw": "cho thôi học",
        "keep": "không có trong tệp, giữ nguyên",
        "read": "đọc dạng",
        "would": "sẽ nhập: {added} thêm mới, {updated} cập nhật, {unchanged} không đổi, "
        "{withdrawn} cho thôi học",
        "refused": "sẽ không nhập gì: có {errors} lỗi",
        "full_name": "họ tên",
        "parent_contact": "liên hệ",
        "readmitted": "trở lại lớp",
    },
}


def describe_roster_error(error: dict[str, Any], language: str) -> str:
    """One problem of a roster file on one line: where, the value, the message, the code."""
    words = _WORDS[language]
    where = [f"{words['sheet']} {error['sheet']}"] if error.get("sheet") else []
    where.append(words["file"] if error["line"] is None else f"{words['line']} {error['line']}")
    if error.get("column"):
        where.append(f"{words['column']} {error['column']}")
    value = f" “{error['value']}”" if error.get("value") else ""
    message = error.get("messages", {}).get(language, "")
    return f"{', '.join(where)}:{value} {message} [{error['reason']}]".replace("  ", " ")


def print_preview(preview: dict[str, Any], language: str) -> None:
    words = _WORDS[language]
    read = preview["file"]
    how = [read["format"] or "?"]
    for key in ("encoding", "sheet"):
        if read.get(key):
            how.append(str(read[key]))
    if read.get("delimiter"):
        how.append(repr(read["delimiter"]))
    print(f"{words['read']}: {', '.join(how)}")
    for row in preview["rows"]:
        status = words[row["status"]]
        changes = ", ".join(words[c] for c in row.get("changes", []))
        detail = f" ({changes})" if changes else ""
        print(f"  {row['line']:>5}  {status:<10} {row['student_code']}\t{row['full_name']}{detail}")
    for student in preview["missing"]:
        action = words[student["action"]]
        print(f"      -  {action}: {student['student_code']}\t{student['full_name']}")
    for error in preview["errors"]:
        print(f"  {describe_roster_error(error, language)}")
    summary = preview["summary"]
    print(words["would" if preview["ok"] else "refused"].format(**summary))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        if args.trace_media:
            logging.getLogger("media.trace").setLevel(logging.DEBUG)
        serve(settings_from_args(args), args.log_level)
    elif args.command == "admin":
        raise SystemExit(run_admin(args))


if __name__ == "__main__":
    main(sys.argv[1:])
