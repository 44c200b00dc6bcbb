'use strict';
// wechat-api (node-webot's callback-style client, urllib underneath)
// against the simulator, or through wxgate's proxy (helpers.js). Its base
// URL is the public `endpoint` property (setEndpoint would force https://).

const { test, describe, before } = require('node:test');
const assert = require('node:assert/strict');
const { promisify } = require('node:util');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const API = require('wechat-api');
const { apiBase, OA, TEMPLATE_ID, TIMEOUT_MS, createUser, act, inbox, waitFor } = require('./helpers');

function newAPI(secret = OA.secret) {
  const api = new API(OA.appid, secret);
  api.endpoint = apiBase(OA.appid);
  api.setOpts({ timeout: TIMEOUT_MS });
  return api;
}

// call runs a callback-style SDK method as a promise.
const call = (api, method, ...args) => promisify(api[method]).apply(api, args);

describe('wechat-api: official account', () => {
  const api = newAPI();
  let follower;

  before(async () => {
    follower = await createUser(OA.appid, true);
  });

  test('getLatestToken', async () => {
    const token = await call(api, 'getLatestToken');
    assert.match(token.accessToken, /^[\w-]{32,}$/);
  });

  test('getUser and batchGetUsers', async () => {
    const info = await call(api, 'getUser', { openid: follower.openid, lang: 'zh_CN' });
    assert.equal(info.subscribe, 1);
    assert.equal(info.unionid, follower.unionid);
    const list = await call(api, 'batchGetUsers', [follower.openid]);
    assert.equal(list.user_info_list[0].openid, follower.openid);
  });

  test('getFollowers', async () => {
    const res = await call(api, 'getFollowers', '');
    assert.ok(res.data.openid.includes(follower.openid));
  });

  test('sendTemplate with a jump link reaches the inbox', async () => {
    const data = {
      character_string1: { value: 'LEGACY0001' },
      thing2: { value: '茶叶礼盒' },
      time3: { value: '2026-11-24 09:30' },
    };
    const res = await call(api, 'sendTemplate', follower.openid, TEMPLATE_ID, { url: 'https://example.com/o/2' }, data);
    assert.equal(res.errcode, 0);
    assert.equal(typeof res.msgid, 'number'); // urllib's JSON.parse: the SDK itself rounds an int64
    const card = await waitFor('the template card', async () =>
      (await inbox(OA.appid, follower.openid)).find((it) => it.template_id === TEMPLATE_ID && it.data.character_string1 === 'LEGACY0001'));
    assert.equal(card.url, 'https://example.com/o/2');
    assert.equal(card.text, '订单号：LEGACY0001\n商品：茶叶礼盒\n发货时间：2026-11-24 09:30');
  });

  test('sendText inside the 48-hour window', async () => {
    await act(OA.appid, follower.openid, { type: 'text', content: '在吗' });
    const res = await call(api, 'sendText', follower.openid, '在的，请讲');
    assert.equal(res.errcode, 0);
    const got = await inbox(OA.appid, follower.openid);
    assert.ok(got.some((it) => it.msgtype === 'text' && it.content === '在的，请讲'));
  });

  test('createTmpQRCode', async () => {
    const qr = await call(api, 'createTmpQRCode', 99, 120);
    assert.equal(qr.expire_seconds, 120);
    assert.equal(typeof qr.ticket, 'string');
  });

  test('menu create / get / remove', async () => {
    await call(api, 'createMenu', { button: [{ type: 'click', name: '联系我们', key: 'CONTACT' }] });
    const got = await call(api, 'getMenu');
    assert.equal(got.menu.button[0].key, 'CONTACT');
    await call(api, 'removeMenu');
    await assert.rejects(call(api, 'getMenu'), { name: 'WeChatAPIError', code: 46003 });
  });

  test('uploadMedia / getMedia, massSendText to a list of openids', async () => {
    const file = path.join(os.tmpdir(), 'wxgate-legacy-' + Date.now().toString(36) + '.jpg');
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 5)]);
    fs.writeFileSync(file, jpeg);
    try {
      const up = await call(api, 'uploadMedia', file, 'image');
      assert.equal(up.type, 'image');
      const got = await call(api, 'getMedia', up.media_id);
      assert.ok(Buffer.isBuffer(got) && got.equals(jpeg), 'media/get returns the uploaded bytes');
    } finally {
      fs.rmSync(file, { force: true });
    }
    const other = await createUser(OA.appid, true);
    const text = '通知 ' + Date.now().toString(36);
    const sent = await call(api, 'massSendText', text, [follower.openid, other.openid]);
    assert.equal(sent.errcode, 0);
    for (const openid of [follower.openid, other.openid]) {
      const items = await inbox(OA.appid, openid);
      assert.ok(items.some((it) => it.kind === 'mass' && it.content === text), `the mass text reached ${openid}`);
    }
    await assert.rejects(call(api, 'massSendText', text, [follower.openid]), { name: 'WeChatAPIError', code: 40130 });
  });

  test('wrong secret: 40125 as WeChatAPIError', async () => {
    await assert.rejects(call(newAPI('wrong-secret'), 'getFollowers', ''), { name: 'WeChatAPIError', code: 40125 });
  });
});
