'use strict';
// The callback side: node-webot's `wechat` middleware (with wechat-crypto)
// serves an app's server URL, and the simulated phones push to it. The
// middleware verifies the signatures of the simulator's pushes, decrypts
// them in compatible and safe mode, and its passive replies (encrypted by
// the middleware where the query asks for it) must show on the phone.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const wechat = require('wechat');
const API = require('co-wechat-api');
const { control, createUser, act, inbox, waitFor, pointCoWechatAPI, SIM } = require('./helpers');

const TOKEN = 'sdkNodeCallbackToken';
const TEMPLATE = {
  template_id: 'cbT3mpl4teN0de5dkW1r3Ga7e0000000000000000aa',
  title: '订单发货通知',
  content: '订单号：{{character_string1.DATA}}\n商品：{{thing2.DATA}}\n发货时间：{{time3.DATA}}',
};

// A tiny server with the middleware on /wx; everything the middleware
// parsed is kept in `received`, errors it passes on in `errors`.
function startServer(config) {
  const received = [];
  const errors = [];
  const mw = wechat(config, (req, res) => {
    const msg = req.weixin;
    received.push({ msg, query: req.query });
    if (msg.MsgType === 'event' && msg.Event === 'subscribe') {
      res.reply('欢迎关注');
    } else if (msg.MsgType === 'event' && msg.Event === 'CLICK') {
      res.reply([{ title: '菜单 ' + msg.EventKey, description: '点击了菜单', picurl: 'https://example.com/p.png', url: 'https://example.com/m' }]);
    } else if (msg.MsgType === 'text' && msg.Content === 'silence') {
      res.reply('');
    } else if (msg.MsgType === 'text') {
      res.reply('收到：' + msg.Content);
    } else if (msg.MsgType === 'location') {
      res.reply({ type: 'text', content: `位置 ${msg.Label}` });
    } else if (msg.MsgType === 'event' && msg.Event === 'TEMPLATESENDJOBFINISH') {
      res.reply('');
    } else {
      res.reply('');
    }
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/wx') {
      res.writeHead(404).end();
      return;
    }
    req.query = Object.fromEntries(url.searchParams);
    mw(req, res, (err) => {
      errors.push(err ? String(err.stack || err) : 'handler passed the message on');
      res.writeHead(500).end();
    });
  });
  server.keepAliveTimeout = 1000;
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, received, errors, url: `http://127.0.0.1:${server.address().port}/wx` }));
  });
}

function randomAppID() {
  return 'wx5d1c0de0' + crypto.randomBytes(4).toString('hex');
}

for (const mode of ['plaintext', 'compatible', 'safe']) {
  describe(`wechat middleware, ${mode} mode`, () => {
    const appid = randomAppID();
    const aesKey = crypto.randomBytes(32).toString('base64').slice(0, 43);
    const secret = crypto.randomBytes(16).toString('hex');
    let srv;

    before(async () => {
      const config = mode === 'plaintext'
        ? { token: TOKEN, appid, checkSignature: true }
        : { token: TOKEN, appid, encodingAESKey: aesKey, checkSignature: true };
      srv = await startServer(config);
      await control('POST', '/sim/api/apps', {
        app_id: appid, app_secret: secret, kind: 'official_account', templates: [TEMPLATE],
        name: `SDK Node callback ${mode}`, callback_url: srv.url, token: TOKEN,
        encoding_aes_key: mode === 'plaintext' ? '' : aesKey, mode,
      });
    });

    after(() => new Promise((resolve) => {
      srv.server.closeAllConnections();
      srv.server.close(resolve);
    }));

    test('server URL verification (echostr)', async () => {
      const res = await control('POST', `/sim/api/apps/${appid}/verify_url`);
      assert.equal(res.ok, true, JSON.stringify(res));
      assert.equal(res.status, 200);
      assert.equal(res.body, res.echostr);
    });

    test('follow: the subscribe event is verified and its reply shown', async () => {
      const user = await createUser(appid, true);
      assert.deepEqual(srv.errors, []);
      assert.equal(user.delivery.outcome, 'reply', JSON.stringify(user.delivery));
      assert.equal(user.reply.msgtype, 'text');
      assert.equal(user.reply.content, '欢迎关注');
      const ev = srv.received.at(-1);
      assert.equal(ev.msg.Event, 'subscribe');
      assert.equal(ev.msg.FromUserName, user.openid);
      assert.equal(ev.query.openid, user.openid);
      if (mode === 'plaintext') {
        assert.equal(ev.query.encrypt_type, undefined);
      } else {
        assert.equal(ev.query.encrypt_type, 'aes');
      }
    });

    test('text: decrypted by the SDK, the passive reply reaches the inbox', async () => {
      const user = await createUser(appid, true);
      const res = await act(appid, user.openid, { type: 'text', content: '你好 wxgate <&> "引号"' });
      assert.deepEqual(srv.errors, []);
      const got = srv.received.at(-1).msg;
      assert.equal(got.MsgType, 'text');
      assert.equal(got.Content, '你好 wxgate <&> "引号"');
      assert.equal(got.FromUserName, user.openid);
      assert.match(got.MsgId, /^\d+$/);
      assert.match(got.CreateTime, /^\d{10}$/);
      assert.ok(res.reply, `a reply is shown: ${JSON.stringify(res.delivery)}`);
      assert.equal(res.reply.msgtype, 'text');
      assert.equal(res.reply.content, '收到：你好 wxgate <&> "引号"');
      const items = await inbox(appid, user.openid);
      assert.equal(items.at(-1).content, '收到：你好 wxgate <&> "引号"');
    });

    test('an empty answer shows nothing', async () => {
      const user = await createUser(appid, true);
      const res = await act(appid, user.openid, { type: 'text', content: 'silence' });
      assert.equal(res.reply ?? null, null, JSON.stringify(res.reply));
      assert.equal(res.delivery.outcome, 'no_reply', JSON.stringify(res.delivery));
    });

    test('click: a one-article news reply', async () => {
      const user = await createUser(appid, true);
      const res = await act(appid, user.openid, { type: 'click', event_key: 'MENU_A' });
      assert.equal(srv.received.at(-1).msg.EventKey, 'MENU_A');
      assert.equal(res.reply?.msgtype, 'news', JSON.stringify(res.delivery));
      assert.equal(res.reply.articles[0].title, '菜单 MENU_A');
    });

    test('location message fields', async () => {
      const user = await createUser(appid, true);
      const res = await act(appid, user.openid, { type: 'location', latitude: 23.134521, longitude: 113.358803, scale: 20, label: '广州塔' });
      const got = srv.received.at(-1).msg;
      assert.equal(got.MsgType, 'location');
      assert.equal(Number(got.Location_X), 23.134521);
      assert.equal(Number(got.Location_Y), 113.358803);
      assert.equal(res.reply?.content, '位置 广州塔', JSON.stringify(res.delivery));
    });

    test('TEMPLATESENDJOBFINISH reaches the middleware with the msgid of the send', async () => {
      const user = await createUser(appid, true);
      const api = pointCoWechatAPI(new API(appid, secret));
      const res = await api.sendTemplate(user.openid, TEMPLATE.template_id, '', '', {
        character_string1: { value: 'CB0001' }, thing2: { value: '绿茶' }, time3: { value: '12:30' },
      });
      const msgid = res.msgid.toString();
      const ev = await waitFor('TEMPLATESENDJOBFINISH', async () => srv.received.find((r) =>
        r.msg.MsgType === 'event' && r.msg.Event === 'TEMPLATESENDJOBFINISH' && r.msg.MsgID === msgid));
      assert.equal(ev.msg.Status, 'success');
      assert.equal(ev.msg.FromUserName, user.openid);
      assert.deepEqual(srv.errors, []);
    });

    test('no alarms were raised against the SDK server', async () => {
      const alarms = await control('GET', `/sim/api/alarms?app_id=${appid}`);
      assert.deepEqual(alarms, [], `simulator at ${SIM} raised: ${JSON.stringify(alarms)}`);
    });
  });
}
