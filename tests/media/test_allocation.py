"""The allocator: audio first, video by priority, hysteresis, probing — on estimate traces."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from media.allocation import (
    HOLD_AFTER,
    MAX_BACKOFF,
    RESUME_AFTER,
    RESUME_MARGIN,
    TICK,
    UNMEASURED_VIDEO_BITRATE,
    Allocator,
    Track,
)

TEACHER = Track("teacher-video", "video", 500_000, priority=0)
AUDIO = Track("teacher-audio", "audio", 40_000, priority=0)


def run(allocator: Allocator, estimates: list[int], tracks: list[Track], start: float = 0.0):
    """Feed one estimate per tick; the allocations, one per tick."""
    out = []
    for i, estimate in enumerate(estimates):
        out.append(allocator.allocate(estimate, tracks, start + i * TICK))
    return out


def test_everything_fits_on_a_good_link() -> None:
    [a] = run(Allocator(), [2_000_000], [AUDIO, TEACHER])
    assert a.forward == {"teacher-video"}
    assert a.state == "ok"
    assert a.wanted == 540_000


def test_a_link_below_the_video_goes_audio_only_within_the_hold_time() -> None:
    allocator = Allocator()
    ticks = int(HOLD_AFTER / TICK) + 2
    allocations = run(allocator, [2_000_000] + [450_000] * ticks, [AUDIO, TEACHER])
    assert allocations[1].forward == {"teacher-video"}  # not at the first short tick
    assert allocations[-1].state == "audio_only"
    assert allocations[-1].held == {"teacher-video"}


def test_a_gross_shortfall_holds_at_once() -> None:
    [_, a] = run(Allocator(), [2_000_000, 150_000], [AUDIO, TEACHER])
    assert a.state == "audio_only"


def test_audio_is_never_held_even_when_the_estimate_is_below_it() -> None:
    [a] = run(Allocator(), [10_000], [AUDIO, TEACHER])
    assert "teacher-audio" not in a.held
    assert a.state == "audio_only"


def test_the_teacher_keeps_her_video_before_students() -> None:
    students = [Track(f"s{i}", "video", 150_000, priority=2) for i in range(4)]
    allocations = run(Allocator(), [800_000] * 10, [AUDIO, TEACHER, *students])
    last = allocations[-1]
    assert "teacher-video" in last.forward
    assert len(last.forward) == 2  # the teacher plus one student fits in 800 k − 40 k
    assert last.state == "weak"


def test_a_pinned_student_comes_before_the_rest() -> None:
    pinned = Track("pinned", "video", 200_000, priority=1)
    rest = Track("rest", "video", 200_000, priority=2)
    last = run(Allocator(), [300_000] * 10, [AUDIO, rest, pinned])[-1]
    assert last.forward == {"pinned"}


def test_unwanted_video_costs_nothing() -> None:
    hidden = Track("hidden", "video", 2_000_000, wanted=False)
    last = run(Allocator(), [700_000] * 5, [AUDIO, TEACHER, hidden])[-1]
    assert last.forward == {"teacher-video"}
    assert "hidden" not in last.held
    assert last.state == "ok"


def test_a_held_video_resumes_only_with_margin_after_the_hold_off() -> None:
    allocator = Allocator()
    run(allocator, [100_000] * 3, [AUDIO, TEACHER])
    # just enough for the video but not the margin: stays held
    almost = run(allocator, [560_000] * 30, [AUDIO, TEACHER], start=1.0)
    assert all(a.state == "audio_only" for a in almost)
    enough = run(allocator, [700_000] * 30, [AUDIO, TEACHER], start=5.0)
    first = next(i for i, a in enumerate(enough) if a.forward)
    assert first * TICK >= RESUME_AFTER - 1e-9
    assert first * TICK <= RESUME_AFTER + 2 * TICK


def test_a_flapping_link_backs_off() -> None:
    """A link that carries the video for a moment and then not: each resume that is held again
    soon doubles the wait before the next one, so the video does not flap every second."""
    allocator = Allocator()
    t = 0.0
    resumes: list[float] = []
    for _ in range(8):
        # good until the video resumes, then bad for a second
        while True:
            a = allocator.allocate(800_000, [AUDIO, TEACHER], t)
            t += TICK
            if a.forward and (not resumes or resumes[-1] != t):
                resumes.append(t)
                break
            if t > 500:
                break
        for _ in range(10):
            allocator.allocate(100_000, [AUDIO, TEACHER], t)
            t += TICK
    gaps = [b - a for a, b in itertools.pairwise(resumes)]
    assert gaps == sorted(gaps)
    assert gaps[-1] >= 4 * RESUME_AFTER
    assert allocator.backoff <= MAX_BACKOFF


def test_what_is_wanted_counts_held_video_so_the_estimator_knows_what_to_probe_for() -> None:
    students = [Track(f"s{i}", "video", 150_000, priority=2) for i in range(2)]
    last = run(Allocator(), [100_000] * 10, [AUDIO, TEACHER, *students])[-1]
    assert last.state == "audio_only"
    assert last.wanted == 40_000 + 500_000 + 2 * 150_000
    assert last.available == 60_000


def test_a_fresh_video_is_taken_to_need_a_keyframe_worth() -> None:
    fresh = Track("fresh", "video", 0.0, priority=0)
    [a] = run(Allocator(), [UNMEASURED_VIDEO_BITRATE // 3], [fresh])
    assert a.state == "audio_only"
    [b] = run(Allocator(), [UNMEASURED_VIDEO_BITRATE * 2], [fresh])
    assert b.forward == {"fresh"}


def test_a_growing_queue_counts_against_the_estimate() -> None:
    allocator = Allocator()
    calm = allocator.allocate(700_000, [AUDIO, TEACHER], 0.0)
    assert calm.forward
    late = None
    for i in range(1, 10):
        late = allocator.allocate(700_000, [AUDIO, TEACHER], i * TICK, queue_delay=0.6)
    assert late is not None and late.state == "audio_only"


def test_tracks_that_disappear_are_forgotten() -> None:
    allocator = Allocator()
    run(allocator, [100_000] * 3, [AUDIO, TEACHER])
    allocator.allocate(100_000, [AUDIO], 1.0)
    assert allocator.videos == {}


@settings(max_examples=200, deadline=None)
@given(
    estimates=st.lists(st.integers(min_value=0, max_value=5_000_000), min_size=1, max_size=80),
    bitrates=st.lists(st.integers(min_value=0, max_value=2_000_000), min_size=1, max_size=6),
)
def test_never_more_than_fits_after_the_hold_time(estimates: list[int], bitrates: list[int]):
    """Whatever the estimates: audio is never held; what is forwarded for a whole hold time
    fits the estimate (within one hold time of a drop); states match what is held."""
    tracks = [AUDIO] + [Track(f"v{i}", "video", b, priority=i % 3) for i, b in enumerate(bitrates)]
    allocator = Allocator()
    steady: list[int] = []
    for i, estimate in enumerate(estimates):
        a = allocator.allocate(estimate, tracks, i * TICK)
        assert not any(k == "teacher-audio" for k in a.held)
        assert a.forward.isdisjoint(a.held)
        assert (a.state == "ok") == (not a.held)
        assert (a.state == "audio_only") == (bool(a.held) and not a.forward)
        steady = [*steady[-int(HOLD_AFTER / TICK) - 1 :], estimate]
        if len(steady) > HOLD_AFTER / TICK + 1 and len(set(steady)) == 1:
            used = sum(t.bitrate or UNMEASURED_VIDEO_BITRATE for t in tracks if t.key in a.forward)
            assert used <= max(estimate - AUDIO.bitrate, 0) or not a.forward


def test_a_held_video_says_how_high_the_estimate_must_go_for_it_to_resume() -> None:
    """Held at an estimate between its bitrate and its bitrate with the resume margin, a
    video fits but cannot come back: ``resume`` (what probing aims at) is above the estimate
    although ``wanted`` is not."""
    allocator = Allocator()
    tracks = [Track("a", "audio", 50_000), Track("v", "video", 850_000, priority=0)]
    allocator.allocate(300_000, tracks, 0.0)  # held at once: far too little
    allocation = allocator.allocate(1_000_000, tracks, 1.0)
    assert allocation.held == {"v"}
    assert allocation.wanted == 900_000 < 1_000_000
    assert allocation.resume == int(50_000 + 850_000 * RESUME_MARGIN) > 1_000_000
    assert allocator.allocate(1_000_000, tracks[:1], 2.0).resume == 0
