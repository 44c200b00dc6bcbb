'use strict';
// co-wechat-api (node-webot's async WeChat API client) against the
// simulator, or through wxgate's proxy with the proxy key as its secret.
// The only change to the SDK's defaults is its base URL: the public prefix
// properties pointed at the simulator or the proxy (see helpers.js).

const { test, describe, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const API = require('co-wechat-api');
const {
  SIM, PROXY, OA, MP, TEMPLATE_ID, SUBSCRIBE_TEMPLATE_ID, TIMEOUT_MS,
  control, createUser, act, inbox, callCount, waitFor, pointCoWechatAPI,
} = require('./helpers');

const newAPI = (app, secret = app.secret) => pointCoWechatAPI(new API(app.appid, secret));

describe('co-wechat-api: official account', () => {
  const api = newAPI(OA);
  let follower; // follows the account
  let stranger; // never followed

  before(async () => {
    follower = await createUser(OA.appid, true);
    stranger = await createUser(OA.appid, false);
  });

  test('getAccessToken: classic token, expires_in 7200', async () => {
    const token = await api.getAccessToken();
    assert.match(token.accessToken, /^[\w-]{32,}$/);
    assert.ok(token.isValid());
    const left = token.expireTime - Date.now();
    if (PROXY) {
      // The proxy hands out the key, living as long as the broker's token.
      assert.equal(token.accessToken, OA.secret);
      assert.ok(left > 0 && left <= 7190e3, `expireTime ${left} ms away`);
    } else {
      assert.ok(left > 7100e3 && left <= 7190e3, `expireTime ${left} ms away`);
    }
  });

  test('getUser: current fields only, unionid of the Open Platform group', async () => {
    const info = await api.getUser({ openid: follower.openid, lang: 'zh_CN' });
    assert.equal(info.subscribe, 1);
    assert.equal(info.openid, follower.openid);
    assert.equal(info.unionid, follower.unionid);
    assert.equal(typeof info.subscribe_time, 'number');
    assert.equal(info.language, 'zh_CN');
    assert.equal(info.subscribe_scene, 'ADD_SCENE_SEARCH');
    assert.deepEqual(info.tagid_list, []);
    assert.equal(info.nickname, undefined, 'nickname is no longer returned');
    assert.equal(info.headimgurl, undefined, 'headimgurl is no longer returned');
  });

  test('getUser: the SDK default lang=en', async () => {
    const info = await api.getUser(follower.openid);
    assert.equal(info.openid, follower.openid);
  });

  test('getUser of a user who does not follow: subscribe 0', async () => {
    const info = await api.getUser(stranger.openid);
    assert.equal(info.subscribe, 0);
    assert.equal(info.openid, stranger.openid);
  });

  test('batchGetUsers: both users, in order', async () => {
    const res = await api.batchGetUsers([follower.openid, stranger.openid]);
    assert.deepEqual(res.user_info_list.map((u) => [u.openid, u.subscribe]),
      [[follower.openid, 1], [stranger.openid, 0]]);
  });

  test('getFollowers: lists followers only, next_openid', async () => {
    const res = await api.getFollowers('');
    assert.ok(res.total >= 1);
    assert.equal(res.count, res.data.openid.length);
    assert.ok(res.data.openid.includes(follower.openid));
    assert.ok(!res.data.openid.includes(stranger.openid));
    assert.equal(typeof res.next_openid, 'string');
  });

  test('sendTemplate: int64 msgid, the card rendered in the phone inbox', async () => {
    const data = {
      character_string1: { value: 'SDK20261124001', color: '#173177' },
      thing2: { value: '精品咖啡豆 500g' },
      time3: { value: '2026-11-24 10:00' },
      // Legacy keys: WeChat drops first/remark since May 2023.
      first: { value: '您的订单已发货' },
      remark: { value: '感谢您的惠顾' },
    };
    const res = await api.sendTemplate(follower.openid, TEMPLATE_ID, 'https://example.com/orders/1', '#FF0000', data);
    assert.equal(res.errcode, 0);
    assert.equal(res.errmsg, 'ok');
    // json-bigint keeps the msgid exact (a BigNumber above 2^53).
    const msgid = res.msgid.toString();
    assert.match(msgid, /^\d+$/);
    assert.ok(BigInt(msgid) > 2n ** 53n, `msgid ${msgid} is above 2^53`);

    const card = await waitFor('the template card', async () =>
      (await inbox(OA.appid, follower.openid)).find((it) => it.msgid === msgid));
    assert.equal(card.template_id, TEMPLATE_ID);
    assert.equal(card.url, 'https://example.com/orders/1');
    assert.deepEqual(card.data, { character_string1: 'SDK20261124001', thing2: '精品咖啡豆 500g', time3: '2026-11-24 10:00' });
    assert.equal(card.text, '订单号：SDK20261124001\n商品：精品咖啡豆 500g\n发货时间：2026-11-24 10:00');
    await waitFor('the job to finish', async () =>
      (await inbox(OA.appid, follower.openid)).find((it) => it.msgid === msgid && it.status === 'success'));
  });

  test('sendTemplate with a value breaking its key type: 47003 naming the field', async () => {
    const data = { character_string1: { value: '订单一' }, thing2: { value: 'x' }, time3: { value: '10:00' } };
    await assert.rejects(api.sendTemplate(follower.openid, TEMPLATE_ID, '', '', data),
      { name: 'WeChatAPIError', code: 47003, message: /data\.character_string1\.value/ });
  });

  test('sendTemplate to a user who does not follow: 43004 as WeChatAPIError', async () => {
    await assert.rejects(api.sendTemplate(stranger.openid, TEMPLATE_ID, '', '', { thing2: { value: 'x' } }),
      { name: 'WeChatAPIError', code: 43004, message: /rid: / });
  });

  test('sendTemplate with an unknown template id: 40037', async () => {
    await assert.rejects(api.sendTemplate(follower.openid, 'no-such-template', '', '', { thing2: { value: 'x' } }),
      { name: 'WeChatAPIError', code: 40037 });
  });

  test('getAllPrivateTemplate lists the preloaded template', async () => {
    const res = await api.getAllPrivateTemplate();
    const t = res.template_list.find((x) => x.template_id === TEMPLATE_ID);
    assert.ok(t, 'preloaded template listed');
    assert.equal(t.title, '订单发货通知');
  });

  test('sendText after the user sent a text; 45015 to a silent user', async () => {
    const talker = await createUser(OA.appid, true);
    // Following opens a short window; use a fresh user who then writes.
    await act(OA.appid, talker.openid, { type: 'text', content: '你好，我想查订单' });
    const res = await api.sendText(talker.openid, '您好，订单已发货 🚚');
    assert.equal(res.errcode, 0);
    const got = await inbox(OA.appid, talker.openid);
    assert.ok(got.some((it) => it.msgtype === 'text' && it.content === '您好，订单已发货 🚚'),
      `custom message in the inbox: ${JSON.stringify(got)}`);

    await assert.rejects(api.sendText(stranger.openid, 'hello'), { name: 'WeChatAPIError', code: 45015 });
  });

  test('createTmpQRCode + showQRCodeURL + scan: the follow carries the scene', async () => {
    const qr = await api.createTmpQRCode(4242, 600);
    assert.equal(typeof qr.ticket, 'string');
    assert.equal(qr.expire_seconds, 600);
    assert.equal(typeof qr.url, 'string');
    const str = await api.createTmpQRCode('promo-2026', 600);
    assert.equal(typeof str.ticket, 'string');
    const limit = await api.createLimitQRCode(7);
    assert.equal(typeof limit.ticket, 'string');
    assert.equal(limit.expire_seconds, undefined, 'permanent codes have no expire_seconds');

    // WeChat's documentation asks for the ticket to be URL-encoded; the SDK
    // concatenates it as given, so it is given encoded (a base64 ticket may
    // hold '+', which a raw query turns into a space).
    const imgURL = api.showQRCodeURL(encodeURIComponent(qr.ticket));
    assert.ok(imgURL.startsWith(SIM + '/cgi-bin/showqrcode?ticket='));
    const img = await fetch(imgURL, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    assert.equal(img.status, 200);
    assert.match(img.headers.get('content-type'), /^image\//);
    const bytes = Buffer.from(await img.arrayBuffer());
    assert.ok(bytes.length > 100);

    const scanner = await createUser(OA.appid, false);
    const res = await act(OA.appid, scanner.openid, { type: 'scan', ticket: qr.ticket });
    assert.equal(res.user.subscribe, true);
    const info = await api.getUser(scanner.openid);
    assert.equal(info.subscribe, 1);
    assert.equal(info.subscribe_scene, 'ADD_SCENE_QR_CODE');
    assert.equal(info.qr_scene, 4242);
  });

  test('createMenu / getMenu / removeMenu; getMenu without a menu is 46003', async () => {
    const menu = {
      button: [
        { type: 'click', name: '今日歌曲', key: 'V1001_TODAY_MUSIC' },
        {
          name: '菜单',
          sub_button: [
            { type: 'view', name: '搜索', url: 'https://www.soso.com/' },
            { type: 'click', name: '赞一下我们', key: 'V1001_GOOD' },
          ],
        },
      ],
    };
    assert.equal((await api.createMenu(menu)).errcode, 0);
    const got = await api.getMenu();
    assert.equal(got.menu.button.length, 2);
    assert.equal(got.menu.button[0].name, '今日歌曲');
    assert.equal(got.menu.button[0].key, 'V1001_TODAY_MUSIC');
    assert.equal(got.menu.button[1].sub_button[0].url, 'https://www.soso.com/');
    assert.equal((await api.removeMenu()).errcode, 0);
    await assert.rejects(api.getMenu(), { name: 'WeChatAPIError', code: 46003 });
  });

  test('getIp: callback IPs', async () => {
    const res = await api.getIp();
    assert.ok(Array.isArray(res.ip_list) && res.ip_list.length > 0);
  });

  test('tags: create, tag a follower, list', async () => {
    const name = 'vip-' + Date.now().toString(36);
    const created = await api.createTags(name);
    assert.equal(created.tag.name, name);
    assert.equal(typeof created.tag.id, 'number');
    assert.equal((await api.batchTagging([follower.openid], created.tag.id)).errcode, 0);
    const ids = await api.getIdList(follower.openid);
    assert.ok(ids.tagid_list.includes(created.tag.id));
    const tags = await api.getTags();
    assert.ok(tags.tags.some((t) => t.id === created.tag.id && t.count === 1));
  });

  test('uploadMedia / getMedia: the bytes come back; a PNG thumb is 40005', async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 7)]);
    const up = await api.uploadMedia(jpeg, 'image', 'welcome.jpg', 'image/jpeg');
    assert.equal(up.type, 'image');
    assert.match(up.media_id, /^[\w-]{32,}$/);
    const got = await api.getMedia(up.media_id);
    assert.ok(Buffer.isBuffer(got) && got.equals(jpeg), 'media/get returns the uploaded bytes');
    const png = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.alloc(20)]);
    await assert.rejects(api.uploadMedia(png, 'thumb', 'cover.png', 'image/png'), { name: 'WeChatAPIError', code: 40005 });
  });

  test('uploadMaterial / getMaterialCount / removeMaterial', async () => {
    const file = path.join(os.tmpdir(), 'wxgate-sdk-' + Date.now().toString(36) + '.jpg');
    fs.writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(100, 3)]));
    try {
      const before = (await api.getMaterialCount()).image_count;
      const up = await api.uploadMaterial(file, 'image');
      assert.ok(up.media_id && up.url, 'a permanent image has a media_id and a url');
      assert.equal((await api.getMaterialCount()).image_count, before + 1);
      assert.equal((await api.removeMaterial(up.media_id)).errcode, 0);
      await assert.rejects(api.removeMaterial(up.media_id), { name: 'WeChatAPIError', code: 40007 });
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  test('massSendText to a tag, previewText, getMassMessageStatus; the follower gets it', async () => {
    const created = await api.createTags('mass-' + Date.now().toString(36));
    assert.equal((await api.batchTagging([follower.openid], created.tag.id)).errcode, 0);
    const text = '群发 ' + Date.now().toString(36);
    assert.equal((await api.previewText(follower.openid, '预览 ' + text)).errcode, 0);
    const sent = await api.massSendText(text, created.tag.id);
    assert.equal(sent.errcode, 0);
    // json-bigint keeps the msg_id exact (a BigNumber above 2^53).
    const msgID = sent.msg_id.toString();
    assert.match(msgID, /^\d+$/);
    const status = await api.getMassMessageStatus(msgID);
    assert.ok(['SENDING', 'SEND_SUCCESS'].includes(status.msg_status), status.msg_status);
    const items = await inbox(OA.appid, follower.openid);
    assert.ok(items.some((it) => it.kind === 'mass' && it.content === text), 'the mass text is on the phone');
    assert.ok(items.some((it) => it.kind === 'mass' && it.content === '预览 ' + text), 'the preview is on the phone');
    await assert.rejects(api.deleteMass(1), { name: 'WeChatAPIError', code: 40059 });
  });

  test('an invalidated token (40001) is refreshed by the SDK and the call retried', async () => {
    await api.getFollowers(''); // the SDK holds a token now
    const before = await callCount(OA.appid, '/cgi-bin/token');
    const stableBefore = await callCount(OA.appid, '/cgi-bin/stable_token');
    await control('POST', `/sim/api/apps/${OA.appid}/invalidate_tokens`);
    const res = await api.getFollowers('');
    assert.ok(res.total >= 1);
    if (PROXY) {
      // The proxy's broker replaces the token and retries; the SDK never
      // sees the 40001 and fetches nothing from WeChat.
      assert.equal(await callCount(OA.appid, '/cgi-bin/token'), 0, 'no SDK token fetch reached WeChat');
      assert.equal(await callCount(OA.appid, '/cgi-bin/stable_token'), stableBefore + 1, "the broker's one new token");
    } else {
      assert.equal(await callCount(OA.appid, '/cgi-bin/token'), before + 1, 'one new token fetched');
    }
  });

  test('wrong secret: 40125 as WeChatAPIError', async () => {
    const bad = newAPI(OA, 'not-the-secret');
    await assert.rejects(bad.getFollowers(''), { name: 'WeChatAPIError', code: 40125, message: /invalid appsecret/ });
  });

  test('unknown appid: 40013', async () => {
    const bad = pointCoWechatAPI(new API('wx0000000000000000', 'x'));
    await assert.rejects(bad.getAccessToken(), { name: 'WeChatAPIError', code: 40013 });
  });
});

describe('co-wechat-api: mini program', () => {
  const api = newAPI(MP);

  test('code2Session with a code minted by the phone; the code is single-use', async () => {
    const user = await createUser(MP.appid, false);
    const opened = await act(MP.appid, user.openid, { type: 'open_miniprogram' });
    assert.equal(typeof opened.code, 'string');

    const session = await api.code2Session(opened.code);
    assert.equal(session.openid, user.openid);
    assert.equal(session.unionid, user.unionid);
    assert.equal(typeof session.session_key, 'string');
    assert.equal(Buffer.from(session.session_key, 'base64').length, 16);

    await assert.rejects(api.code2Session(opened.code), { name: 'WeChatAPIError', code: 40163 });
    await assert.rejects(api.code2Session('never-issued'), { name: 'WeChatAPIError', code: 40029 });
  });

  test('code2Session with a wrong secret: 40125', async () => {
    const user = await createUser(MP.appid, false);
    const { code } = await act(MP.appid, user.openid, { type: 'open_miniprogram' });
    await assert.rejects(newAPI(MP, 'wrong').code2Session(code), { name: 'WeChatAPIError', code: 40125 });
  });

  test('sendSubscribeMessage: one send per accepted grant, then 43101', async () => {
    const user = await createUser(MP.appid, false);
    await act(MP.appid, user.openid, { type: 'subscribe_popup', template_ids: [SUBSCRIBE_TEMPLATE_ID], accept: true });
    const data = { thing1: { value: '手冲咖啡' }, amount2: { value: '¥39.80' }, time3: { value: '2026-11-24 10:00' } };
    const res = await api.sendSubscribeMessage(user.openid, SUBSCRIBE_TEMPLATE_ID, 'pages/order/detail?id=7', data);
    assert.equal(res.errcode, 0);
    const item = await waitFor('the subscription message', async () =>
      (await inbox(MP.appid, user.openid)).find((it) => it.template_id === SUBSCRIBE_TEMPLATE_ID));
    assert.equal(item.page, 'pages/order/detail?id=7');
    assert.equal(item.text, '商品：手冲咖啡\n金额：¥39.80\n下单时间：2026-11-24 10:00');
    await assert.rejects(api.sendSubscribeMessage(user.openid, SUBSCRIBE_TEMPLATE_ID, '', data),
      { name: 'WeChatAPIError', code: 43101 });
  });

  test('an official account API with a mini program token: 48001', async () => {
    await assert.rejects(api.getFollowers(''), { name: 'WeChatAPIError', code: 48001 });
  });
});
