"""Personal join links: one per rostered student and lesson, signed, expiring, revocable.

A link is ``https://host/l/<lesson code>#k=<token>``. The token is::

    <link id>.<signature>
    link id   = 16 random bytes (``secrets``), base64url: 128 bits, never guessable,
                and the primary key of the stored link
    signature = HMAC-SHA256(server secret, "lophoc.link.v1|id|lesson id|roster entry id|expiry")

Why both a random id *and* a signature, when the id alone is already unguessable:

* the database stores only the id, never a usable token, and the secret is kept outside the
  database: a leaked copy of the database cannot be turned into links;
* the signature binds the token to its lesson, its student and its expiry: a row edited to
  point at another lesson or student, or to live longer, no longer matches its token;
* the server can print a lesson's links again at any time (the teacher lists them) without
  storing them in clear.

Verification (:meth:`LinkService.verify`) writes nothing and answers with stable codes:
``bad_link`` (malformed, forged or unknown — not told apart), ``wrong_lesson``,
``link_revoked`` (the teacher cut this one link off, or the student left the class),
``link_expired``. The checks run in that order, so a forged token never learns anything else.

**Expiry**: the lesson's scheduled end plus :data:`LINK_GRACE` (30 minutes). Lessons overrun,
and a student whose phone drops near the end must get back in; well after the lesson, a link
found in a chat history must not open anything. Ending the lesson early closes it sooner
(``lesson_ended``, checked by :meth:`classroom.lessons.LessonService.admit_with_link`).

**Revocation** is per link: a leaked link names its owner, and cutting it off changes no one
else's. The teacher may then :meth:`~LinkService.reissue` a fresh link to that student.

**The secret** (:func:`load_link_secret`): ``LOPHOC_LINK_SECRET`` if set (hex or base64url,
at least 32 bytes; a secrets manager's way), else a key file — ``link.key`` in the data
directory unless configured — that only the server's user may read: a file any other user can
read is refused, as ssh refuses such a private key. A single server creates the file (32 random
bytes, mode 0600) on first start. Nodes that share one database (and Redis) must sign with one
key, so they never create it: each is given a copy of the first node's file, or the variable,
and refuses to start without one, naming both ways. Older versions kept the key in the
database's ``server_secrets``; found there, it is moved into the key file and deleted from the
database, so the links already handed out keep working. Changing the key invalidates every
link that was handed out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import quote

from classroom.errors import ClassroomError
from classroom.lessons import Lesson, LinkHolder, looks_like_id

log = logging.getLogger(__name__)

LINK_GRACE: Final = timedelta(minutes=30)
LINK_SECRET_NAME: Final = "join_link_key"
SECRET_BYTES: Final = 32
MIN_CONFIGURED_SECRET_BYTES: Final = 32
_ID_BYTES: Final = 16
_TOKEN: Final = re.compile(r"([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
_MAX_TOKEN_INPUT: Final = 256
_DOMAIN: Final = b"lophoc.link.v1"


@dataclass(frozen=True, slots=True)
class JoinLink:
    """A stored link and the student it belongs to. Holds no secret: the token is made by
    :meth:`LinkService.token_for`."""

    id: str
    lesson_id: str
    roster_entry_id: str
    student_code: str
    full_name: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    student_withdrawn: bool = False

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class LinkStore(Protocol):
    """Durable join links. Every write is committed before the method returns."""

    async def issue_missing(
        self,
        lesson_id: str,
        class_id: str,
        issued_at: datetime,
        expires_at: datetime,
        new_id: Callable[[], str],
    ) -> None:
        """Give every active student of the class who has no link for the lesson yet (revoked
        or not) a new one, in one transaction; concurrent calls never give one twice."""
        ...

    async def links(self, lesson_id: str) -> list[JoinLink]:
        """Every link of the lesson, by student code; a student's revoked links before the
        live one."""
        ...

    async def link(self, link_id: str) -> JoinLink | None: ...

    async def revoke(self, link_id: str, revoked_at: datetime, revoked_by: str | None) -> None:
        """Set ``revoked_at`` unless already set."""
        ...

    async def reissue(
        self,
        link_id: str,
        new_link_id: str,
        at: datetime,
        by: str | None,
    ) -> JoinLink | None:
        """Revoke the link (if not yet) and give its student a new one with the same expiry,
        in one transaction; None if the link is unknown."""
        ...


class SecretStore(Protocol):
    """Where older versions kept the link key (``server_secrets``): read once to move it out."""

    async def get(self, name: str) -> str | None: ...

    async def delete(self, name: str) -> None: ...


class LinkKeyError(Exception):
    """The server cannot start without its join-link key: the message says what to do."""


def _now() -> datetime:
    return datetime.now(UTC)


async def load_link_secret(
    store: SecretStore,
    configured: str | None = None,
    *,
    key_file: Path | None = None,
    create: bool = True,
) -> bytes:
    """The key join links are signed with (see the module docstring): ``configured`` (≥ 32
    bytes as hex or base64url, e.g. from ``LOPHOC_LINK_SECRET``), else ``key_file`` — moved
    there from the database if an older version stored it, created if missing and ``create``.
    Raises :class:`LinkKeyError` (or ``ValueError`` for a bad ``configured``)."""
    if configured:
        key = _decode_secret(configured)
        if key is None or len(key) < MIN_CONFIGURED_SECRET_BYTES:
            raise ValueError("the link secret must be at least 32 bytes, as hex or base64url")
        return key
    if key_file is None:
        raise LinkKeyError("no join-link key: set LOPHOC_LINK_SECRET or give a key file")
    key = _read_key_file(key_file)
    if key is not None:
        return key
    stored = await store.get(LINK_SECRET_NAME)
    if stored is not None:
        key = _decode_secret(stored)
        if key is None:
            raise LinkKeyError("the join-link key stored in the database is damaged")
        key = _create_key_file(key_file, key)
        await store.delete(LINK_SECRET_NAME)
        log.warning("moved the join-link key out of the database into %s", key_file)
        return key
    if not create:
        raise LinkKeyError(
            f"no join-link key at {key_file}. Servers that share a database must sign links "
            "with one key: copy the first server's key file there (mode 0600), or set "
            "LOPHOC_LINK_SECRET on every server."
        )
    key = _create_key_file(key_file, secrets.token_bytes(SECRET_BYTES))
    log.info("created the join-link key %s", key_file)
    return key


def _read_key_file(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LinkKeyError(f"cannot read the join-link key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise LinkKeyError(
                f"the join-link key {path} can be read by other users "
                f"(mode {stat.S_IMODE(mode):04o}): run chmod 600 {path}"
            )
        text = file.read(1024).decode("ascii", "replace")
    key = _decode_secret(text)
    if key is None or len(key) < MIN_CONFIGURED_SECRET_BYTES:
        raise LinkKeyError(f"the join-link key {path} is damaged (not 32 bytes or more)")
    return key


def _create_key_file(path: Path, key: bytes) -> bytes:
    """Write ``key`` to a new file only the owner may read. If another process created it
    first, its key wins (read back), so two servers starting at once agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = _read_key_file(path)
        if existing is None:  # removed in between
            raise LinkKeyError(f"the join-link key {path} vanished while it was created") from None
        return existing
    try:
        with os.fdopen(fd, "wb") as file:
            file.write((_b64(key) + "\n").encode("ascii"))
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise LinkKeyError(f"cannot write the join-link key {path}: {exc.strerror}") from exc
    return key


class LinkService:
    """Issuing, listing, revoking and verifying personal join links."""

    def __init__(
        self,
        store: LinkStore,
        secret: bytes,
        *,
        clock: Callable[[], datetime] = _now,
        grace: timedelta = LINK_GRACE,
    ) -> None:
        if len(secret) < MIN_CONFIGURED_SECRET_BYTES:
            raise ValueError("the link secret must be at least 32 bytes")
        self._store = store
        self._key = hmac.new(secret, _DOMAIN, hashlib.sha256).digest()
        self._clock = clock
        self._grace = grace

    def __repr__(self) -> str:
        return "LinkService(secret='…')"

    def expiry_of(self, lesson: Lesson) -> datetime:
        if lesson.scheduled_end is None:
            raise ValueError("only class lessons have personal links")
        return (lesson.scheduled_end + self._grace).astimezone(UTC).replace(microsecond=0)

    async def ensure_links(self, lesson: Lesson) -> list[JoinLink]:
        """Every link of a class lesson, first issuing one to each active student who has
        none (students added to the class after the lesson was scheduled). Nothing new is
        issued once the lesson has ended or its links have expired."""
        if lesson.class_id is None:
            return []
        expires_at = self.expiry_of(lesson)
        now = self._clock()
        if not lesson.ended and now < expires_at:
            await self._store.issue_missing(lesson.id, lesson.class_id, now, expires_at, _new_id)
        return await self._store.links(lesson.id)

    async def links(self, lesson_id: str) -> list[JoinLink]:
        if not looks_like_id(lesson_id):
            return []
        return await self._store.links(lesson_id)

    def token_for(self, link: JoinLink) -> str:
        """The secret part of a link; give it only to the teacher of the lesson."""
        signature = self._signature(link.id, link.lesson_id, link.roster_entry_id, link.expires_at)
        return f"{link.id}.{signature}"

    async def revoke(self, lesson_id: str, link_id: str, *, by: str | None = None) -> JoinLink:
        """Cut one link off (idempotent); ``not_found`` unless it is a link of that lesson."""
        link = await self._lesson_link(lesson_id, link_id)
        if link.revoked_at is None:
            await self._store.revoke(link.id, self._clock(), by)
            log.info("join link %s of lesson %s revoked", link.id, lesson_id)
        revoked = await self._store.link(link.id)
        assert revoked is not None
        return revoked

    async def reissue(self, lesson_id: str, link_id: str, *, by: str | None = None) -> JoinLink:
        """Revoke a link and give its student a new one; ``not_found`` as for :meth:`revoke`."""
        link = await self._lesson_link(lesson_id, link_id)
        fresh = await self._store.reissue(link.id, _new_id(), self._clock(), by)
        if fresh is None:
            raise ClassroomError.not_found()
        log.info("join link %s of lesson %s replaced by %s", link.id, lesson_id, fresh.id)
        return fresh

    async def verify(self, token: object, *, lesson_id: str | None = None) -> LinkHolder:
        """Who holds this token; see the module docstring for the refusals. Writes nothing."""
        parsed = _parse(token)
        if parsed is None:
            raise ClassroomError.bad_link()
        link_id, signature = parsed
        link = await self._store.link(link_id)
        if link is None:
            # Spend the same HMAC as a real check, so an unknown id is not visibly faster.
            self._signature(link_id, "", "", self._clock())
            raise ClassroomError.bad_link()
        expected = self._signature(link.id, link.lesson_id, link.roster_entry_id, link.expires_at)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise ClassroomError.bad_link()
        if lesson_id is not None and lesson_id != link.lesson_id:
            raise ClassroomError.wrong_lesson()
        if link.revoked or link.student_withdrawn:
            raise ClassroomError.link_revoked()
        if self._clock() >= link.expires_at:
            raise ClassroomError.link_expired()
        return LinkHolder(
            link_id=link.id,
            lesson_id=link.lesson_id,
            roster_entry_id=link.roster_entry_id,
            student_code=link.student_code,
            full_name=link.full_name,
        )

    async def _lesson_link(self, lesson_id: str, link_id: str) -> JoinLink:
        link = (
            await self._store.link(link_id)
            if isinstance(link_id, str) and _ID.fullmatch(link_id)
            else None
        )
        if link is None or link.lesson_id != lesson_id:
            raise ClassroomError.not_found()
        return link

    def _signature(
        self, link_id: str, lesson_id: str, roster_entry_id: str, expires_at: datetime
    ) -> str:
        message = "|".join(
            (link_id, lesson_id, roster_entry_id, str(int(expires_at.timestamp())))
        ).encode("ascii")
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())


def link_url(base_url: str, lesson_code: str, token: str) -> str:
    """The address a student opens: ``<base>/l/<code>#k=<token>``.

    The token travels in the fragment, which browsers never send to the server: it cannot end
    up in an access log, a proxy's log or a ``Referer``. The page reads it and joins with it.
    """
    return f"{base_url.rstrip('/')}/l/{quote(lesson_code, safe='')}#k={quote(token, safe='')}"


_ID: Final = re.compile(r"[A-Za-z0-9_-]{22}")


def _new_id() -> str:
    return _b64(secrets.token_bytes(_ID_BYTES))


def _parse(token: object) -> tuple[str, str] | None:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_INPUT:
        return None
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        return None
    return match.group(1), match.group(2)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_secret(text: str) -> bytes | None:
    text = text.strip()
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", text):
        return bytes.fromhex(text)
    if re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", text):
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
    return None
