"""The SFU forwards real aiortc media between real peers on loopback, through MediaService."""

from __future__ import annotations

from aiortc import RTCSessionDescription

from media.ice import IceSettings
from media.service import MediaService, MediaSettings
from tests.peers import (
    ColourTrack,
    Receiver,
    ToneTrack,
    answer_offer,
    close_to,
    loopback_pc,
    wait_for,
)


async def test_video_and_audio_reach_a_subscriber_decoded() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    teacher.addTrack(ColourTrack((200, 30, 30)))
    teacher.addTrack(ToneTrack())
    await teacher.setLocalDescription(await teacher.createOffer())
    answer, producers = await service.publish("L1", "teacher", teacher.localDescription.sdp)
    await teacher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    assert sorted(p.kind for p in producers) == ["audio", "video"]

    student = loopback_pc()
    rx = Receiver(student)
    offer = await service.subscribe("L1", "student", [p.id for p in producers])
    assert offer is not None
    await service.accept_answer("L1", "student", await answer_offer(student, offer.sdp))
    try:
        assert await wait_for(lambda: close_to(rx.mean_rgb(), (200, 30, 30)), timeout=15)
        assert await wait_for(lambda: rx.audio_frames > 10, timeout=5)
    finally:
        await rx.close()
        await student.close()
        await teacher.close()
        await service.close()
