"""A minimal protocol client that runs *inside* Chromium, independent of web/static.

It speaks docs/protocol.md from ``page.evaluate`` on any page of the server (same origin, so the
WebSocket passes the Origin check) and installs the same ``window.lophoc`` debug handle as the
real client. The tests built on it separate "the server and Chromium work together" from "the
lesson pages work": when a page test fails and these pass, look at web/static first.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

RAW_CLIENT_JS = r"""
async (opts) => {
  const h = window.lophoc = {
    state: 'connecting', participantId: null, role: null, lessonCode: null, participants: [],
    _pcs: {publish: null, subscribe: null}, _ws: null, log: [],
    pcs() { return this._pcs; }, socket() { return this._ws; },
  };
  let nextId = 1, resumeToken = null, stream = null;
  const pending = new Map();
  const request = (type, fields = {}) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, {resolve, reject});
    h._ws.send(JSON.stringify({type, id, ...fields}));
  });
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  let offers = Promise.resolve();
  const answerOffer = async (data) => {
    const pc = h._pcs.subscribe;
    await pc.setRemoteDescription({type: 'offer', sdp: data.sdp});
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await request('answer', {sdp: pc.localDescription.sdp, version: data.version});
  };
  const queueOffer = (data) => {
    offers = offers.then(() => answerOffer(data)).catch((e) => h.log.push('offer: ' + e));
  };
  const open = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    h._ws = ws;
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error('websocket error'));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'event') {
        h.log.push('event ' + m.event);
        if (m.event === 'offer') queueOffer(m.data);
        return;
      }
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (!p) return;
      if (m.type === 'ok') p.resolve(m.data); else p.reject(new Error(m.code));
    };
    ws.onclose = (e) => {
      h.log.push('close ' + e.code);
      if (ws !== h._ws) return;
      if (h.state === 'connected' && ![1000, 4002, 4003, 1008].includes(e.code)) {
        h.state = 'reconnecting';
        start({resume: resumeToken}).catch((err) => {
          h.log.push('resume: ' + err);
          h.state = 'closed';
        });
      } else {
        h.state = 'closed';
      }
    };
  });
  const start = async (joinFields) => {
    for (const pc of Object.values(h._pcs)) if (pc) pc.close();
    h._pcs = {publish: null, subscribe: null};
    await open();
    const joined = await request('join', joinFields);
    resumeToken = joined.resume_token;
    h.participantId = joined.participant.id;
    h.role = joined.participant.role;
    h.lessonCode = joined.lesson.code;
    if (opts.publish) {
      stream = stream || await navigator.mediaDevices.getUserMedia({audio: true, video: true});
      const pc = new RTCPeerConnection({iceServers: []});
      for (const t of stream.getTracks()) pc.addTransceiver(t, {direction: 'sendonly'});
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const answer = await request('publish', {sdp: pc.localDescription.sdp});
      await pc.setRemoteDescription({type: 'answer', sdp: answer.sdp});
      h._pcs.publish = pc;
    }
    h._pcs.subscribe = new RTCPeerConnection({iceServers: []});
    const first = await request('subscribe');
    if (first.sdp) queueOffer(first);
    h.state = 'connected';
  };
  const join = opts.token ? {token: opts.token}
    : {code: opts.code, password: opts.password, name: opts.name};
  await start(join);
  return h.participantId;
}
"""


async def raw_join(page: Page, **options: Any) -> str:
    """Join from ``page`` (already on the server's origin). Options: ``token`` (teacher) or
    ``code``, ``password``, ``name``; ``publish`` (fake camera and microphone)."""
    participant: str = await page.evaluate(RAW_CLIENT_JS, options)
    return participant
