"""media/port.py: the async MediaPort in front of an in-process MediaService."""

from __future__ import annotations

import asyncio

import pytest

from media.ice import IceSettings
from media.port import DownlinkChange, LocalMedia, MediaError
from media.service import MediaService, MediaSettings


def change(participant: str, state: str = "weak") -> DownlinkChange:
    return DownlinkChange("l_1", participant, state, "bandwidth", 300_000, [])


async def test_reports_come_out_in_order_and_the_oldest_go_when_nobody_reads() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    port = LocalMedia(service, max_pending=2)
    assert service.on_downlink is not None
    for pid in ("p_1", "p_2", "p_3"):
        service.on_downlink(change(pid))
    events = port.events()
    first = await asyncio.wait_for(anext(events), 1)
    second = await asyncio.wait_for(anext(events), 1)
    assert [first.participant_id, second.participant_id] == ["p_2", "p_3"]
    assert port.dropped_events == 1
    await service.close()


async def test_one_service_reports_to_one_port() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    LocalMedia(service)
    with pytest.raises(ValueError):
        LocalMedia(service)
    await service.close()


async def test_calls_carry_plain_data_and_refusals_stay_media_errors() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    port = LocalMedia(service)
    assert await port.producers("l_1") == []
    assert await port.subscribe("l_1", "p_1", []) is None  # nothing to carry: no transport
    assert await port.downlink("l_1", "p_1") == {
        "state": "ok",
        "reason": None,
        "estimate": None,
        "paused": [],
    }
    assert await port.set_data_saver("l_1", "p_1", True) is False  # no transport to report
    assert (await port.downlink("l_1", "p_1"))["state"] == "audio_only"
    with pytest.raises(MediaError):
        await port.pause("l_1", "pr_missing")
    with pytest.raises(MediaError, match="another lesson"):
        await port.subscribe("l_2", "p_1", [])
    assert await port.close_participant("l_1", "p_1") == []
    await port.close_lesson("l_1")
    await service.close()
