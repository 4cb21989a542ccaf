"""The teacher's clip: encoded once with ``av``, cached on disk, looped forever.

Video: libavfilter's ``testsrc2`` (a moving, colourful test pattern) with temporal noise so the
encoder has real work, encoded by libvpx VP8 at 640×360, 30 fps, 800 kbps target with WebRTC-like
real-time settings (no lag, no alt-ref, error resilient, keyframes capped at 3× an average frame).
The first frame is the only regular keyframe; a second, all-keyframe encoding of the same frames
answers keyframe requests (PLI/FIR) the way a real sender would: the next frame is sent as a
keyframe.

Audio: a gliding tone with a little noise (so no two 20 ms packets repeat), libopus at 32 kbps.

The cache file is a small length-prefixed binary format (no pickle): a magic line, a JSON header
with the parameters, then packets as ``<kind:u8><flags:u8><size:u32><bytes>``. Any mismatch or
corruption means "encode again".
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

__all__ = ["Clip", "ClipParams", "default_cache_dir", "encode_clip", "load_clip"]

_MAGIC = b"LOPHOC-CLIP\n"
_FORMAT_VERSION = 1
_KIND_VIDEO = 0
_KIND_INTRA = 1
_KIND_AUDIO = 2
_FLAG_KEY = 1
_RECORD = struct.Struct("<BBI")


@dataclass(frozen=True)
class ClipParams:
    seconds: int = 10
    width: int = 640
    height: int = 360
    fps: int = 30
    video_bitrate: int = 800_000
    audio_bitrate: int = 32_000
    noise: int = 12

    def key(self) -> str:
        fields = asdict(self)
        return "-".join(f"{k}{fields[k]}" for k in sorted(fields))


@dataclass
class Clip:
    params: ClipParams
    video: list[bytes] = field(default_factory=list)
    """One encoded VP8 frame per video frame; ``video[0]`` is a keyframe."""
    video_keyframes: list[bool] = field(default_factory=list)
    intra: list[bytes] = field(default_factory=list)
    """The same frames, each encoded as a keyframe (sent after a keyframe request)."""
    audio: list[bytes] = field(default_factory=list)
    """One Opus packet per 20 ms."""

    @property
    def video_kbps(self) -> float:
        return sum(map(len, self.video)) * 8 / self.params.seconds / 1000

    @property
    def audio_kbps(self) -> float:
        return sum(map(len, self.audio)) * 8 / self.params.seconds / 1000

    def validate(self) -> None:
        p = self.params
        if len(self.video) != p.seconds * p.fps or len(self.intra) != len(self.video):
            raise ValueError("clip has the wrong number of video frames")
        if len(self.video_keyframes) != len(self.video) or not self.video_keyframes[0]:
            raise ValueError("clip does not start with a keyframe")
        if len(self.audio) != p.seconds * 50:
            raise ValueError("clip has the wrong number of audio packets")
        if not all(self.video) or not all(self.intra) or not all(self.audio):
            raise ValueError("clip has an empty packet")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lophoc" / "loadtests"


def _cache_path(cache_dir: Path, params: ClipParams) -> Path:
    return cache_dir / f"clip-v{_FORMAT_VERSION}-{params.key()}.bin"


def write_clip(clip: Clip, path: Path) -> None:
    """Write atomically (temp file + rename) so a crash never leaves half a cache file."""
    clip.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps({"version": _FORMAT_VERSION, "params": asdict(clip.params)}).encode()
    fd, tmp = tempfile.mkstemp(prefix=".clip-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_MAGIC)
            out.write(struct.pack("<I", len(header)))
            out.write(header)
            for kind, packets, keys in (
                (_KIND_VIDEO, clip.video, clip.video_keyframes),
                (_KIND_INTRA, clip.intra, [True] * len(clip.intra)),
                (_KIND_AUDIO, clip.audio, [False] * len(clip.audio)),
            ):
                for data, key in zip(packets, keys, strict=True):
                    out.write(_RECORD.pack(kind, _FLAG_KEY if key else 0, len(data)))
                    out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_clip(path: Path, params: ClipParams) -> Clip:
    """Read a cache file; ``ValueError`` when it is not exactly the clip for ``params``."""
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError("not a clip file")
    offset = len(_MAGIC)
    if len(data) < offset + 4:
        raise ValueError("truncated clip file")
    (header_size,) = struct.unpack_from("<I", data, offset)
    offset += 4
    try:
        header = json.loads(data[offset : offset + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("bad clip header") from exc
    offset += header_size
    if not isinstance(header, dict) or header.get("version") != _FORMAT_VERSION:
        raise ValueError("clip file of another version")
    if header.get("params") != asdict(params):
        raise ValueError("clip file of other parameters")
    clip = Clip(params=params)
    while offset < len(data):
        if len(data) < offset + _RECORD.size:
            raise ValueError("truncated clip record")
        kind, flags, size = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        if len(data) < offset + size:
            raise ValueError("truncated clip packet")
        packet = data[offset : offset + size]
        offset += size
        if kind == _KIND_VIDEO:
            clip.video.append(packet)
            clip.video_keyframes.append(bool(flags & _FLAG_KEY))
        elif kind == _KIND_INTRA:
            clip.intra.append(packet)
        elif kind == _KIND_AUDIO:
            clip.audio.append(packet)
        else:
            raise ValueError(f"unknown clip record kind {kind}")
    clip.validate()
    return clip


def load_clip(
    cache_dir: Path | None = None, params: ClipParams | None = None, *, log: bool = True
) -> Clip:
    """The clip for ``params`` from the cache, encoding (and caching) it on a miss."""
    params = params or ClipParams()
    path = _cache_path(cache_dir or default_cache_dir(), params)
    try:
        return read_clip(path, params)
    except FileNotFoundError:
        pass
    except ValueError as exc:
        if log:
            print(f"clip cache {path} unusable ({exc}); encoding again", file=sys.stderr)
    if log:
        print(f"encoding the clip once into {path} …", file=sys.stderr)
    clip = encode_clip(params)
    try:
        write_clip(clip, path)
    except OSError as exc:  # a read-only cache is not fatal
        if log:
            print(f"could not cache the clip: {exc}", file=sys.stderr)
    return clip


# --- encoding (needs av) ------------------------------------------------------------------


def _video_frames(params: ClipParams) -> Iterator[object]:
    import av
    import av.filter
    from av.video.frame import PictureType

    graph = av.filter.Graph()
    src = graph.add("testsrc2", f"size={params.width}x{params.height}:rate={params.fps}")
    chain = [src]
    if params.noise:
        chain.append(graph.add("noise", f"alls={params.noise}:allf=t"))
    chain.append(graph.add("format", "pix_fmts=yuv420p"))
    chain.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    for index in range(params.seconds * params.fps):
        frame = chain[-1].pull()
        assert isinstance(frame, av.VideoFrame)
        frame.pts = index
        frame.time_base = Fraction(1, params.fps)
        frame.pict_type = PictureType.NONE
        yield frame


def _vp8_encoder(params: ClipParams, *, intra: bool) -> object:
    import av

    codec = av.CodecContext.create("libvpx", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width = params.width
    codec.height = params.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, params.fps)
    codec.framerate = Fraction(params.fps, 1)
    codec.bit_rate = params.video_bitrate
    codec.gop_size = 1 if intra else params.seconds * params.fps
    codec.thread_count = 2
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "error-resilient": "1",
        "max-intra-rate": "300",
    }
    return codec


def _encode_video(params: ClipParams, *, intra: bool) -> tuple[list[bytes], list[bool]]:
    import av
    from av.video.frame import PictureType

    codec = _vp8_encoder(params, intra=intra)
    assert isinstance(codec, av.VideoCodecContext)
    packets: list[av.Packet] = []
    for frame in _video_frames(params):
        assert isinstance(frame, av.VideoFrame)
        if intra:
            frame.pict_type = PictureType.I
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    return [bytes(p) for p in packets], [bool(p.is_keyframe) for p in packets]


def _encode_audio(params: ClipParams) -> list[bytes]:
    import av
    import av.filter

    graph = av.filter.Graph()
    tone = "exprs=0.25*sin(2*PI*(330+110*sin(2*PI*t/5))*t)+0.03*(random(0)-0.5):s=48000:n=960"
    chain = [
        graph.add("aevalsrc", tone),
        graph.add("aformat", "sample_fmts=s16:channel_layouts=stereo:sample_rates=48000"),
        graph.add("abuffersink"),
    ]
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = params.audio_bitrate
    codec.time_base = Fraction(1, 48000)
    wanted = params.seconds * 50
    packets: list[bytes] = []
    samples = 0
    # bounded: the encoder emits one 20 ms packet per 960 samples (plus its pre-skip delay)
    for _ in range(wanted + 50):
        if len(packets) >= wanted:
            break
        frame = chain[-1].pull()
        assert isinstance(frame, av.AudioFrame)
        frame.pts = samples
        frame.time_base = Fraction(1, 48000)
        samples += frame.samples
        packets.extend(bytes(p) for p in codec.encode(frame))
    return packets[:wanted]


def encode_clip(params: ClipParams) -> Clip:
    video, keys = _encode_video(params, intra=False)
    intra, _ = _encode_video(params, intra=True)
    clip = Clip(
        params=params, video=video, video_keyframes=keys, intra=intra, audio=_encode_audio(params)
    )
    clip.validate()
    return clip
