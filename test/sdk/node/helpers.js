'use strict';
// Shared helpers of the Node SDK suites: where the simulator is, the apps
// declared in ../apps.yaml, and a small client of the simulator's control
// API (/sim/api/) used to play the phones and read their inboxes.

const assert = require('node:assert/strict');

const SIM = (process.env.WXGATE_SIM_URL || '').replace(/\/+$/, '');
if (!SIM) {
  throw new Error('WXGATE_SIM_URL is not set: run these suites through test/sdk/run.sh, ' +
    'or start `wxgate sim --apps test/sdk/apps.yaml` and export WXGATE_SIM_URL=http://ADDR');
}
const sim = new URL(SIM);
if (sim.hostname !== '127.0.0.1' && sim.hostname !== 'localhost') {
  throw new Error(`WXGATE_SIM_URL must be on the loopback interface, got ${SIM}`);
}

// The suite's apps, as declared in ../apps.yaml.
const OA = { appid: 'wx5d1c0de000000a01', secret: 'sdk-test-oa-secret-not-a-real-one' };
const MP = { appid: 'wx5d1c0de000000a02', secret: 'sdk-test-mp-secret-not-a-real-one' };
const TEMPLATE_ID = 'Kq0sWOpRrJ3vTzd6Yh5uGQeM1bXcN8aLfD2wE7iP4Ts';
const SUBSCRIBE_TEMPLATE_ID = 'bDmywsp2oEHjwAadTGKkUHpC0RgBVPvfAEeQzi9d0SA';

const TIMEOUT_MS = 15000;

// JSON of the control API with int64 ids (msgid) kept as strings, since a
// msgid is above 2^53 and would lose digits as a JS number.
function parseControl(text) {
  return JSON.parse(text.replace(/"(msgid|msg_id)":(\d{16,})/g, '"$1":"$2"'));
}

async function control(method, path, body) {
  const res = await fetch(SIM + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status >= 300) {
    throw new Error(`${method} ${path} → HTTP ${res.status}: ${text}`);
  }
  return text ? parseControl(text) : null;
}

// A simulated user of appid; follow: whether they follow the account.
function createUser(appid, follow, extra = {}) {
  return control('POST', '/sim/api/users', { app_id: appid, follow, ...extra });
}

function act(appid, openid, action) {
  return control('POST', `/sim/api/users/${encodeURIComponent(openid)}/actions`, { app_id: appid, ...action });
}

function inbox(appid, openid) {
  return control('GET', `/sim/api/users/${encodeURIComponent(openid)}/inbox?app_id=${encodeURIComponent(appid)}`);
}

async function callCount(appid, path) {
  const counts = await control('GET', `/sim/api/calls?app_id=${encodeURIComponent(appid)}`);
  const byPath = counts[appid] || counts;
  return byPath[path] || 0;
}

// waitFor polls fn until it returns a truthy value or the time is up.
async function waitFor(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Points a co-wechat-api / wechat-api style client at the simulator: its
// URL prefixes are public properties (https://api.weixin.qq.com/… and
// https://mp.weixin.qq.com/cgi-bin/ by default).
function pointCoWechatAPI(api) {
  api.prefix = SIM + '/cgi-bin/';
  api.snsPrefix = SIM + '/sns/';
  api.wxaPrefix = SIM + '/wxa/';
  api.mpPrefix = SIM + '/cgi-bin/';
  api.setOpts({ timeout: TIMEOUT_MS });
  return api;
}

module.exports = {
  SIM, OA, MP, TEMPLATE_ID, SUBSCRIBE_TEMPLATE_ID, TIMEOUT_MS,
  control, createUser, act, inbox, callCount, waitFor, parseControl, pointCoWechatAPI,
};
