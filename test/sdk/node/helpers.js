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

// Through wxgate's WeChat API proxy (run.sh's second pass): the SDKs'
// base URL is the gateway's /wechat/{account}/ and their AppSecret is a
// wxgate API key of scope proxy; the simulator is still played directly.
const PROXY = (process.env.WXGATE_PROXY_URL || '').replace(/\/+$/, '');
const PROXY_KEY = process.env.WXGATE_PROXY_KEY || '';
if (PROXY && !PROXY_KEY) throw new Error('WXGATE_PROXY_URL is set without WXGATE_PROXY_KEY');

// The suite's apps, as declared in ../apps.yaml, and their wxgate account
// names in the proxy pass.
const OA = { appid: 'wx5d1c0de000000a01', secret: PROXY_KEY || 'sdk-test-oa-secret-not-a-real-one', account: 'sdk-node-oa' };
const MP = { appid: 'wx5d1c0de000000a02', secret: PROXY_KEY || 'sdk-test-mp-secret-not-a-real-one', account: 'sdk-node-mp' };

// apiBase is where an SDK calls WeChat's API (api.weixin.qq.com) for app:
// the simulator, or the app's account on the proxy. An appid the suite
// does not own goes to the official account's.
function apiBase(appid) {
  if (!PROXY) return SIM;
  return `${PROXY}/wechat/${appid === MP.appid ? MP.account : OA.account}`;
}
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
// mpPrefix (showqrcode, on mp.weixin.qq.com, needs no token) stays on the
// simulator in the proxy pass too: the proxy stands for api.weixin.qq.com.
function pointCoWechatAPI(api) {
  const base = apiBase(api.appid);
  api.prefix = base + '/cgi-bin/';
  api.snsPrefix = base + '/sns/';
  api.wxaPrefix = base + '/wxa/';
  api.mpPrefix = SIM + '/cgi-bin/';
  api.setOpts({ timeout: TIMEOUT_MS });
  return api;
}

module.exports = {
  SIM, PROXY, apiBase, OA, MP, TEMPLATE_ID, SUBSCRIBE_TEMPLATE_ID, TIMEOUT_MS,
  control, createUser, act, inbox, callCount, waitFor, parseControl, pointCoWechatAPI,
};
