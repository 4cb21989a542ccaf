"""A bare RTCPeerConnection in a Chromium page, driven through ``page.evaluate``: for tests that
put Chromium on one side of the SFU without the lesson pages (RED, RTX). Every description is
returned once ICE gathering is complete (these tests give the server no trickled candidates)."""

NEW_PC_JS = """
() => {
  const pc = new RTCPeerConnection({iceServers: []});
  window.pc = pc;
  window.gathered = () => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
}
"""
"""Make ``window.pc`` and ``window.gathered()``."""

PUBLISH_JS = """
async (constraints) => {
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
}
"""
"""Publish the fake camera/microphone (``getUserMedia`` constraints); the offer's SDP."""

ANSWER_JS = """
async (sdp) => {
  await pc.setRemoteDescription({type: 'offer', sdp});
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  return pc.localDescription.sdp;
}
"""
"""Answer the server's subscribe offer; the answer's SDP."""
