"""The clip cache: round trip, validation, re-encoding on a bad file, and a real tiny encode."""

from __future__ import annotations

from pathlib import Path

import pytest

import loadtests.clip as clip_module
from loadtests.clip import Clip, ClipParams, load_clip, read_clip, write_clip

SMALL = ClipParams(seconds=1, width=160, height=96, fps=10, video_bitrate=100_000)


def fake_clip(params: ClipParams = SMALL) -> Clip:
    frames = params.seconds * params.fps
    return Clip(
        params=params,
        video=[b"V%03d" % i * (i + 1) for i in range(frames)],
        video_keyframes=[i == 0 for i in range(frames)],
        intra=[b"I%03d" % i for i in range(frames)],
        audio=[b"A%03d" % i for i in range(params.seconds * 50)],
    )


def test_round_trip(tmp_path: Path) -> None:
    clip = fake_clip()
    path = tmp_path / "c.bin"
    write_clip(clip, path)
    again = read_clip(path, SMALL)
    assert again == clip
    assert not list(tmp_path.glob(".clip-*"))  # no temp file left behind


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"NOT-A-CLIP" + b,
        lambda b: b[:-3],
        lambda b: b[:40],
        lambda b: b.replace(b'"version": 1', b'"version": 9'),
    ],
)
def test_damaged_file_is_rejected(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "c.bin"
    write_clip(fake_clip(), path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ValueError):
        read_clip(path, SMALL)


def test_other_params_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    write_clip(fake_clip(), path)
    with pytest.raises(ValueError):
        read_clip(path, ClipParams(seconds=1, width=160, height=96, fps=10, video_bitrate=1))


def test_validate() -> None:
    clip = fake_clip()
    clip.video_keyframes[0] = False
    with pytest.raises(ValueError):
        clip.validate()
    clip = fake_clip()
    clip.audio.pop()
    with pytest.raises(ValueError):
        clip.validate()


def test_load_encodes_once_then_reads_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[ClipParams] = []

    def encode(params: ClipParams) -> Clip:
        calls.append(params)
        return fake_clip(params)

    monkeypatch.setattr(clip_module, "encode_clip", encode)
    first = load_clip(tmp_path, SMALL, log=False)
    second = load_clip(tmp_path, SMALL, log=False)
    assert first == second
    assert len(calls) == 1
    # a corrupt cache file is replaced, not trusted
    (cached,) = tmp_path.iterdir()
    cached.write_bytes(cached.read_bytes()[:100])
    assert load_clip(tmp_path, SMALL, log=False) == first
    assert len(calls) == 2
    # other parameters, other file
    other = ClipParams(seconds=1, width=160, height=96, fps=10, video_bitrate=50_000)
    load_clip(tmp_path, other, log=False)
    assert len(calls) == 3
    assert len(list(tmp_path.iterdir())) == 2


def test_real_encode_is_vp8_and_opus() -> None:
    clip = clip_module.encode_clip(SMALL)
    clip.validate()
    assert clip.video_keyframes[0] and not any(clip.video_keyframes[1:])
    # a VP8 frame tag: bit 0 is the inverse keyframe flag; keyframes carry the start code
    assert clip.video[0][3:6] == b"\x9d\x01\x2a"
    assert all(frame[3:6] == b"\x9d\x01\x2a" for frame in clip.intra)
    assert all(frame[0] & 1 for frame in clip.video[1:])
    assert len(set(clip.audio)) == len(clip.audio)  # no repeated audio packet (latency keys)
