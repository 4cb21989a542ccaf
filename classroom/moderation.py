"""Who may do what in a lesson: roles, per-lesson controls and the checks every request passes.

Sans-I/O: plain data in, a decision out. The live lesson asks these on *every* request —
the client's buttons are a convenience, never the enforcement — so a modified client or a raw
WebSocket gets exactly the same answers as the teacher console.

Roles: the **teacher** (host) may do everything; a **moderator** (co-host) everything except
ending the lesson and making or unmaking moderators, and nothing to the teacher; a **student**
(on the class list) and a **guest** (came in with the lesson password) act only on themselves,
within the lesson's permissions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from .errors import ClassroomError
from .safety import Action

Role = Literal["teacher", "moderator", "student", "guest"]
ROLES: tuple[Role, ...] = ("teacher", "moderator", "student", "guest")
STAFF: frozenset[str] = frozenset({"teacher", "moderator"})


class Permission(StrEnum):
    """What the lesson lets students and guests do on their own."""

    UNMUTE = "unmute"
    VIDEO = "video"
    SCREEN = "screen"
    CHAT = "chat"
    PRIVATE_CHAT = "private_chat"


DEFAULT_PERMISSIONS: frozenset[Permission] = frozenset(
    {Permission.UNMUTE, Permission.VIDEO, Permission.CHAT, Permission.PRIVATE_CHAT}
)

WaitingRoom = Literal["everyone", "guests", "nobody"]
WAITING_ROOM_MODES: tuple[WaitingRoom, ...] = ("everyone", "guests", "nobody")


#: Actions only the teacher may take (moderators may take every other one).
TEACHER_ONLY: frozenset[Action] = frozenset(
    {Action.END_LESSON, Action.MAKE_MODERATOR, Action.REVOKE_MODERATOR}
)


@dataclass
class Controls:
    """A live lesson's settings, as the teacher and moderators set them."""

    waiting_room: WaitingRoom = "guests"
    locked: bool = False
    chat: bool = True
    permissions: frozenset[Permission] = field(default_factory=lambda: DEFAULT_PERMISSIONS)

    def to_json(self) -> dict[str, object]:
        return {
            "waiting_room": self.waiting_room,
            "locked": self.locked,
            "chat": self.chat,
            "permissions": sorted(self.permissions),
        }


def forbidden(message: str) -> ClassroomError:
    return ClassroomError("forbidden", message)


def check_staff(role: str) -> None:
    """Raise ``forbidden`` unless ``role`` is the teacher's or a moderator's."""
    if role not in STAFF:
        raise forbidden("Only the teacher or a moderator can do that.")


def check_action(actor_role: str, action: Action, target_role: str | None = None) -> None:
    """Raise ``forbidden`` unless ``actor_role`` may take ``action`` (on ``target_role``)."""
    check_staff(actor_role)
    if action in TEACHER_ONLY and actor_role != "teacher":
        raise forbidden("Only the teacher can do that.")
    if target_role == "teacher":
        raise forbidden("Nobody can do that to the teacher.")


def may(role: str, permission: Permission, controls: Controls) -> bool:
    """Whether a participant in ``role`` may use ``permission`` on their own now."""
    if role in STAFF:
        return True
    if permission in (Permission.CHAT, Permission.PRIVATE_CHAT) and not controls.chat:
        return False
    return permission in controls.permissions


def check_permission(role: str, permission: Permission, controls: Controls) -> None:
    if not may(role, permission, controls):
        raise forbidden(_REFUSALS[permission])


_REFUSALS: dict[Permission, str] = {
    Permission.UNMUTE: "The teacher has not allowed students to turn their microphones on.",
    Permission.VIDEO: "The teacher has not allowed students to turn their cameras on.",
    Permission.SCREEN: "The teacher has not allowed students to share their screens.",
    Permission.CHAT: "Chat is turned off in this lesson.",
    Permission.PRIVATE_CHAT: "Private messages to the teacher are turned off in this lesson.",
}


def must_wait(role: str, on_class_list: bool, mode: WaitingRoom) -> bool:
    """Whether a newcomer goes to the waiting room (the teacher never waits)."""
    if role in STAFF:
        return False
    if mode == "everyone":
        return True
    if mode == "nobody":
        return False
    return not on_class_list  # "guests": guests and names not on the class list wait


def parse_permissions(values: list[str]) -> frozenset[Permission]:
    try:
        return frozenset(Permission(v) for v in values)
    except ValueError:
        raise ClassroomError("malformed", "Malformed request: unknown permission.") from None
