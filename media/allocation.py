"""Sharing one subscriber's downlink among what it receives: audio first. Sans-I/O.

Every ``TICK`` seconds the subscriber's transport asks ``Allocator.allocate`` what to forward,
given the downlink estimate (``media.bwe``) and the tracks the subscriber receives, each with the
bitrate its publisher sends now. The rules, in order:

1. **Audio always.** Every audio track is forwarded whatever the estimate: a student who can
   hear the teacher is still in the lesson; one who can see her but not hear her is not. Audio's
   bitrate and the retransmissions the subscriber asked for are taken off the budget first.
2. **Video by priority**: the teacher's and screen-share video first (priority 0), then a
   pinned or speaking student (1), then the rest (2); within a priority, in the order given
   (the subscriber's own order of its view). A video that does not fit in what is left is
   *held* (paused by the server; it resumes at a keyframe, as every paused consumer does).
   Video the subscriber does not want (its view, the data saver) is simply not counted.
3. **Hysteresis, so nothing flaps.** A forwarded video is held when it has not fitted for
   ``HOLD_AFTER`` seconds in a row (at once when the shortfall is gross: it needs more than
   ``HOLD_AT_ONCE`` times what is left). A held video comes back only when it fits with
   ``RESUME_MARGIN`` to spare for a resume hold-off of ``RESUME_AFTER`` seconds, doubled
   (up to ``MAX_BACKOFF``) each time a resumed video has to be held again within
   ``FLAP_WINDOW`` — a link that cannot really carry it stops being offered it every second.
4. **What is wanted.** Each allocation also says how much the subscriber would receive if the
   link carried everything it wants (``wanted``) and whether it holds something back: that is
   what the estimator's probing (``DownlinkEstimator.next_probe``) needs, since a held video is
   the one case where the estimate cannot find out by itself that the link recovered (it only
   grows on traffic that proves it). ``resume`` is the estimate at which every held video would
   come back (each counted with ``RESUME_MARGIN``): probing must aim at least there, or an
   estimate between a video's bitrate and its bitrate with margin would hold it for good —
   too low to resume it, yet above ``wanted``, so never probed.

``state`` summarises it for the subscriber and the teacher: ``ok`` (everything wanted is
forwarded), ``weak`` (some video held, the most important still forwarded) or ``audio_only``
(every wanted video held).

Simulcast will make "which layer" one more decision of the same loop: a track will offer
several (bitrate, layer) steps and the allocator will pick the highest that fits instead of
all-or-nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

TICK = 0.1
"""Seconds between allocations."""
HOLD_AFTER = 0.5
"""Seconds a forwarded video may go on not fitting before it is held."""
HOLD_AT_ONCE = 2.0
"""A video needing this many times what is left is held at once."""
RESUME_MARGIN = 1.2
"""A held video resumes only if its bitrate times this fits."""
RESUME_AFTER = 1.0
"""Seconds a held video must fit (with margin) before it resumes; doubled on each flap."""
MAX_BACKOFF = 16.0
FLAP_WINDOW = 10.0
"""A video held again within this many seconds of resuming counts as a flap."""
CALM_AFTER = 60.0
"""Seconds without a flap after which the resume hold-off is back to ``RESUME_AFTER``."""
UNMEASURED_VIDEO_BITRATE = 300_000
"""Bits per second a video is taken to need before its publisher's rate has been measured (a
fresh stream starts with a keyframe)."""


@dataclass(slots=True)
class Track:
    """One track the subscriber receives, as the allocator sees it."""

    key: str  # the consumer's id
    kind: str  # "audio" | "video"
    bitrate: float  # bits per second its publisher sends now
    priority: int = 2  # 0 teacher and screen share, 1 pinned or speaking, 2 the rest
    wanted: bool = True  # the subscriber's view and data saver let it through


@dataclass(slots=True)
class Allocation:
    forward: frozenset[str]
    """The video tracks to forward (audio is always forwarded)."""
    held: frozenset[str]
    """Wanted video tracks held for lack of bandwidth."""
    state: str
    """``ok``, ``weak`` or ``audio_only``."""
    wanted: int
    """Bits per second the subscriber would receive if everything wanted were forwarded."""
    available: int
    """Bits per second left for video after audio and retransmissions."""
    resume: int = 0
    """The estimate at which every held video would resume: ``wanted`` with each held video
    counted ``RESUME_MARGIN`` times (0 when nothing is held)."""


_PRIORITY = attrgetter("priority")


@dataclass(slots=True)
class _Video:
    forwarding: bool = True
    short_since: float | None = None  # when it started not fitting (forwarded)
    fits_since: float | None = None  # when it started fitting with margin (held)
    resumed_at: float = float("-inf")
    held_at: float = float("-inf")


@dataclass
class Allocator:
    """One subscriber's allocation state across ticks."""

    videos: dict[str, _Video] = field(default_factory=dict)
    backoff: float = RESUME_AFTER
    last_flap: float = float("-inf")
    holds: int = 0
    resumes: int = 0

    def allocate(
        self,
        estimate: int,
        tracks: list[Track],
        now: float,
        *,
        retransmit_bitrate: float = 0.0,
        queue_delay: float = 0.0,
    ) -> Allocation:
        """Decide, for the estimate (bits per second) and tracks, what to forward now.

        ``queue_delay`` is how long the pacer's queue needs to drain: a queue that grows means
        the estimate is already too high for what is forwarded, so it counts against it."""
        if now - self.last_flap > CALM_AFTER:
            self.backoff = RESUME_AFTER
        # One pass over the tracks (this runs every TICK for every subscriber).
        audio: float = 0
        videos: list[Track] = []
        unwanted: list[Track] = []
        for t in tracks:
            if t.kind == "audio":
                audio += t.bitrate
            elif t.kind == "video":
                (videos if t.wanted else unwanted).append(t)
        budget = estimate - audio - retransmit_bitrate
        if queue_delay > 0.2:
            budget -= queue_delay * estimate
        videos.sort(key=_PRIORITY)
        states = self.videos
        seen = {t.key for t in videos}
        if unwanted:
            seen.update(t.key for t in unwanted)
        if not seen.issuperset(states):
            for key in [k for k in states if k not in seen]:
                del states[key]
        left = budget
        forward: set[str] = set()
        held: set[str] = set()
        held_need = 0.0
        for track in videos:
            state = self.videos.get(track.key)
            if state is None:
                state = self.videos[track.key] = _Video()
            need = track.bitrate if track.bitrate > 0 else UNMEASURED_VIDEO_BITRATE
            if state.forwarding:
                if need <= left:
                    state.short_since = None
                elif need > HOLD_AT_ONCE * max(left, 0.0) or (
                    state.short_since is not None and now - state.short_since >= HOLD_AFTER
                ):
                    self._hold(state, now)
                elif state.short_since is None:
                    state.short_since = now
            else:
                if need * RESUME_MARGIN <= left:
                    if state.fits_since is None:
                        state.fits_since = now
                    if now - state.fits_since >= self.backoff and now - state.held_at >= (
                        self.backoff
                    ):
                        state.forwarding = True
                        state.resumed_at = now
                        state.short_since = None
                        self.resumes += 1
                else:
                    state.fits_since = None
            if state.forwarding:
                forward.add(track.key)
                left -= need
            else:
                held.add(track.key)
                held_need += need
        for track in unwanted:  # not wanted: forgotten as held, so it starts afresh when wanted
            state = states.get(track.key)
            if state is not None and not state.forwarding:
                state.forwarding = True
        wanted = audio + retransmit_bitrate + (budget - left) + held_need
        if not held:
            status = "ok"
        elif not forward:
            status = "audio_only"
        else:
            status = "weak"
        return Allocation(
            forward=frozenset(forward),
            held=frozenset(held),
            state=status,
            wanted=int(wanted),
            available=int(max(budget, 0)),
            resume=int(wanted + held_need * (RESUME_MARGIN - 1)) if held else 0,
        )

    def _hold(self, state: _Video, now: float) -> None:
        state.forwarding = False
        state.held_at = now
        state.fits_since = None
        state.short_since = None
        self.holds += 1
        if now - state.resumed_at < FLAP_WINDOW:
            self.backoff = min(MAX_BACKOFF, self.backoff * 2)
            self.last_flap = now
