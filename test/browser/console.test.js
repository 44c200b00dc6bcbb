// The admin console in real headless Chromium against a running
// `wxgate demo` (started by run.sh, which passes its addresses in the
// environment). Each test waits for the state it needs (Playwright's
// auto-waiting and expect-style polling), never a fixed sleep.
"use strict";
const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { chromium } = require("playwright-core");

const GW = process.env.WXGATE_GATEWAY;
const SIM = process.env.WXGATE_SIM;
const LINK = process.env.WXGATE_LOGIN_LINK;
const PASSWORD = process.env.WXGATE_ADMIN_PASSWORD;
const API_KEY = process.env.WXGATE_API_KEY;
const SHOTS = process.env.SCREENSHOT_DIR || path.join(__dirname, "output");
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 375, height: 812 };

let browser;
let userDataDir;

before(async () => {
  assert.ok(GW && SIM && LINK && PASSWORD && API_KEY, "run through test/browser/run.sh");
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "wxgate-chromium-"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    // Playwright starts Chromium with a fresh --user-data-dir of its own
    // (it refuses the flag); TMPDIR points it at our folder.
    env: { ...process.env, TMPDIR: userDataDir },
  });
});

after(async () => {
  if (browser) await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
});

// newPage opens a tab in its own context; CSP violations and script
// errors fail the test that caused them.
async function newPage(t, { lang = "zh-CN", viewport = DESKTOP } = {}) {
  const context = await browser.newContext({ locale: lang, viewport, extraHTTPHeaders: { "Accept-Language": lang } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const problems = [];
  // Failed loads are judged by their kind below (a page may answer 401
  // on purpose); everything else the console reports is a fault.
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) problems.push(msg.text());
  });
  page.on("response", (res) => {
    const kind = res.request().resourceType();
    if (res.status() >= 400 && ["stylesheet", "script", "image", "font"].includes(kind)) {
      problems.push(`${kind} ${res.url()}: HTTP ${res.status()}`);
    }
  });
  page.on("pageerror", (err) => problems.push(String(err)));
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], "errors in the browser console");
  });
  return page;
}

async function signIn(page) {
  await page.goto(GW + "/admin/login");
  await page.fill('input[name="username"]', "admin");
  await page.fill('input[name="password"]', PASSWORD);
  await Promise.all([page.waitForURL(/\/admin\/send/), page.click('button[type="submit"]')]);
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky top bar belongs at the top
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

async function api(method, p, body) {
  const res = await fetch(GW + p, {
    method, headers: { Authorization: "Bearer " + API_KEY, "Content-Type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// waitUntil polls fn until it returns a truthy value.
async function waitUntil(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("the printed one-time link signs in, once", async (t) => {
  const page = await newPage(t);
  await page.goto(LINK);
  await page.waitForURL(/\/admin\/send/);
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  const other = await newPage(t, { lang: "en-US" });
  const res = await other.goto(LINK);
  assert.equal(res.status(), 401);
  assert.match(await other.textContent("main"), /invalid, used or expired/);
});

test("sign in with the password, switch language, and it is remembered", async (t) => {
  const page = await newPage(t, { lang: "zh-CN" });
  await signIn(page);
  assert.match(await page.textContent("nav.side"), /发送消息/);
  await Promise.all([page.waitForURL(/\/admin\/send/), page.click('[data-test="lang-switch"]')]);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.match(await page.textContent("nav.side"), /Send/);
  await page.goto(GW + "/admin/audit");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await Promise.all([page.waitForURL(/\/admin\/audit/), page.click('[data-test="lang-switch"]')]);
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
});

// pages are shown in the screenshots and checked at both widths.
const pages = [
  ["dashboard", "/admin/dashboard"],
  ["send", "/admin/send"],
  ["messages", "/admin/messages"],
  ["followers", "/admin/followers"],
  ["templates", "/admin/templates"],
  ["schedules", "/admin/schedules"],
  ["schedule-new", "/admin/schedules/new"],
  ["bindings", "/admin/bindings"],
  ["replies", "/admin/replies?test=%E4%BD%A0%E5%A5%BD"],
  ["keys", "/admin/keys"],
  ["accounts", "/admin/accounts"],
  ["audit", "/admin/audit"],
  ["api", "/admin/api"],
];

for (const [lang, code] of [["zh-CN", "zh"], ["en-US", "en"]]) {
  for (const [width, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    test(`every page in ${code} at ${width} width`, async (t) => {
      const page = await newPage(t, { lang, viewport });
      await signIn(page);
      for (const [name, p] of pages) {
        const res = await page.goto(GW + p);
        assert.equal(res.status(), 200, `${p}: HTTP ${res.status()}`);
        const text = await page.textContent("body");
        assert.ok(!text.includes("⟦missing text"), `${p} has untranslated text`);
        // Nothing wider than the screen: wide tables scroll inside their box.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 1) {
          const wide = await page.evaluate(() => [...document.querySelectorAll("body *")]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5).map((el) => el.tagName + "." + el.className + " " + (el.textContent || "").slice(0, 40)));
          assert.fail(`${p} is ${overflow}px wider than the ${viewport.width}px window: ${wide.join(" | ")}`);
        }
        await shot(page, `${name}-${code}-${width}`);
      }
      if (width === "desktop") {
        const login = await newPage(t, { lang, viewport });
        await login.goto(GW + "/admin/login");
        await shot(login, `login-${code}-${width}`);
      }
    });
  }
}

test("send a card from the composer and see it arrive on the simulator's phone", async (t) => {
  const page = await newPage(t, { lang: "zh-CN" });
  await signIn(page);
  await page.goto(GW + "/admin/send?account=demo&channel=template&template=new_visitor");
  const openid = await page.getAttribute('[data-test="send-followers"] input[name="pick"]', "value");
  await page.check(`input[name="pick"][value="${openid}"]`);
  const customer = "浏览器测试 " + Date.now();
  await page.fill('input[name="data.customer"]', customer);
  await page.fill('input[name="data.page"]', "楼盘C 3室2厅");
  await page.fill('input[name="data.time"]', "2026-12-05 15:30");
  // The live preview shows the card as typed, and that it follows the rules.
  await page.waitForSelector(`[data-test="preview-card"]:has-text("${customer}")`);
  await page.waitForSelector('[data-test="preview-ok"]');
  await shot(page, "send-composer-filled-zh-desktop");
  await Promise.all([page.waitForURL(/\/admin\/send\/[^/]+$/), page.click('[data-test="send-submit"]')]);
  // The progress updates by itself until delivered.
  await page.waitForSelector('[data-test="send-done"]', { timeout: 30000 });
  assert.match(await page.textContent('[data-test="send-progress"]'), /已送达/);
  await shot(page, "send-progress-zh-desktop");

  // The simulator's phone of that follower shows the card.
  const accounts = await api("GET", "/api/v1/accounts");
  const list = Array.isArray(accounts) ? accounts : accounts.accounts;
  const appID = list.find((a) => a.name === "demo").app_id;
  const phone = await newPage(t, { lang: "zh-CN", viewport: PHONE });
  await phone.goto(`${SIM}/sim/?app_id=${appID}&openid=${openid}`);
  await waitUntil("the card on the phone", async () => {
    await phone.reload();
    return (await phone.textContent("#chat")).includes(customer);
  });
  await shot(phone, "simulator-phone-card");

  // Its menu: 今日推荐 is answered by the demo's click rule.
  await phone.click('button.menu-btn[data-path="今日推荐"]');
  await waitUntil("the menu's reply on the phone", async () => (await phone.textContent("#chat")).includes("今日推荐：楼盘A"));
  await shot(phone, "simulator-phone-menu");

  // The demo's first follower carries the tag 演示会员: the phone shows
  // that follower the conditional menu, with 会员专享 in place of 帮助.
  const users = await (await fetch(`${SIM}/sim/api/users?app_id=${appID}`)).json();
  await phone.goto(`${SIM}/sim/?app_id=${appID}&openid=${users[0].openid}`);
  assert.equal(await phone.locator('button.menu-btn[data-path="帮助"]').count(), 0, "the tagged follower sees the default menu");
  await phone.click('button.menu-btn[data-path="会员专享"]');
  await waitUntil("the member menu's reply on the phone", async () => (await phone.textContent("#chat")).includes("会员专享：本周到店"));
  await shot(phone, "simulator-phone-conditional-menu");
});

test("the message list and the dashboard show what was sent", async (t) => {
  const page = await newPage(t, { lang: "zh-CN" });
  await signIn(page);
  await page.goto(GW + "/admin/messages?account=demo");
  const row = page.locator('[data-test="message-list"] tr[data-message]').first();
  await row.waitFor();
  await shot(page, "messages-list-zh-desktop");
  await Promise.all([page.waitForURL(/\/admin\/messages\/[^/?]+$/), row.locator("a").click()]);
  await page.waitForSelector('[data-test="send-done"]');
  assert.match(await page.textContent('[data-test="send-progress"]'), /已送达/);
  await page.goto(GW + "/admin/dashboard?account=demo");
  const sends = Number(await page.textContent('[data-test="stat-sends"] .value'));
  assert.ok(sends >= 1, `sends shown: ${sends}`);
  assert.ok(await page.locator('svg[data-test="dashboard-chart"] rect.s2[height]:not([height="0"])').count() >= 1, "no send bar drawn");
  await shot(page, "dashboard-after-send-zh-desktop");
  const phone = await newPage(t, { lang: "en-US", viewport: PHONE });
  await signIn(phone);
  await phone.goto(GW + "/admin/dashboard?account=demo");
  await shot(phone, "dashboard-after-send-en-phone");
});

test("open a follower's page, then run a full sync and watch it complete", async (t) => {
  for (const [lang, code, viewport, width] of [["zh-CN", "zh", DESKTOP, "desktop"], ["en-US", "en", PHONE, "phone"]]) {
    const page = await newPage(t, { lang, viewport });
    await signIn(page);
    await page.goto(GW + "/admin/followers?account=demo");
    const link = page.locator('[data-test="follower-list"] tr[data-openid] a').first();
    await Promise.all([page.waitForURL(/\/admin\/followers\/demo\/[^/]+$/), link.click()]);
    await page.waitForSelector('[data-test="timeline-in"]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the follower page is ${overflow}px wider than the window`);
    await shot(page, `follower-${code}-${width}`);
    if (code === "zh") {
      await page.goto(GW + "/admin/followers?account=demo");
      await Promise.all([page.waitForURL(/\/admin\/followers\/sync\?/), page.click('[data-test="sync-start"] button')]);
      await page.waitForSelector('[data-test="sync-done"]', { timeout: 60000 });
      assert.match(await page.textContent('[data-test="sync-progress"]'), /已完成/);
      await shot(page, "follower-sync-zh-desktop");
    }
  }
});

test("make a binding QR code and scan it on the simulator's phone", async (t) => {
  const page = await newPage(t, { lang: "zh-CN" });
  await signIn(page);
  await page.goto(GW + "/admin/bindings");
  const externalID = "CRM-" + Date.now();
  await page.fill('[data-test="binding-new"] input[name="external_id"]', externalID);
  await Promise.all([page.waitForURL(/\/admin\/bindings\/qrcode\/[^/]+$/), page.click('[data-test="binding-new"] button[type="submit"]')]);
  await page.waitForSelector('[data-test="qr-image"]');
  await page.waitForFunction(() => {
    const img = document.querySelector('[data-test="qr-image"]');
    return img.complete && img.naturalWidth > 0;
  });
  const ticket = (await page.textContent('[data-test="qr-ticket"]')).trim();
  await shot(page, "binding-qrcode-zh-desktop");

  // The phone: a follower of the demo account scans the ticket.
  const accounts = await api("GET", "/api/v1/accounts");
  const appID = (Array.isArray(accounts) ? accounts : accounts.accounts).find((a) => a.name === "demo").app_id;
  const followers = await api("GET", "/api/v1/followers?account=demo");
  const openid = (followers.followers || followers.items || followers)[0].openid;
  const phone = await newPage(t, { lang: "zh-CN", viewport: PHONE });
  await phone.goto(`${SIM}/sim/?app_id=${appID}&openid=${openid}`);
  await phone.fill('form.action[data-type="scan"] input[name="ticket"]', ticket);
  await phone.click('form.action[data-type="scan"] button');

  // The console page learns it by itself.
  await page.waitForSelector('[data-test="qr-bound"]', { timeout: 30000 });
  assert.match(await page.textContent('[data-test="qr-state"]'), new RegExp(openid));
  await shot(page, "binding-bound-zh-desktop");
  await page.goto(GW + "/admin/bindings?q=" + encodeURIComponent(externalID));
  await page.waitForSelector(`[data-test="binding-list"] tr:has-text("${externalID}")`);
  await shot(page, "bindings-zh-desktop");
});

test("create a schedule, see its next times as typed, and run it now", async (t) => {
  const page = await newPage(t, { lang: "zh-CN" });
  await signIn(page);
  await page.goto(GW + "/admin/schedules/new");
  await page.fill('[data-test="schedule-cron"]', "15 8 * * 1-5");
  await waitUntil("the next five times", async () => (await page.locator('[data-test="cron-times"] li:has-text("08:15")').count()) === 5);
  await page.fill('[data-test="schedule-cron"]', "8:15 every day");
  await page.waitForSelector('[data-test="cron-bad"]');
  await page.fill('[data-test="schedule-cron"]', "15 8 * * 1-5");
  await page.waitForSelector('[data-test="cron-times"]');
  const followers = await api("GET", "/api/v1/followers?account=demo");
  const openid = followers.followers[0].openid;
  await page.fill('input[name="name"]', "浏览器测试提醒");
  await page.selectOption('select[name="audience"]', "openids");
  await page.fill('textarea[name="recipients"]', openid);
  await page.fill('input[name="template"]', "new_visitor");
  await page.fill('[data-test="schedule-data"]', "customer = 孙老板\npage = 楼盘H\ntime = 2026-12-07 08:15");
  await shot(page, "schedule-form-zh-desktop");
  await Promise.all([page.waitForURL(/\/admin\/schedules\/\d+\?done=saved$/), page.click('[data-test="schedule-save"]')]);
  // Try it for the follower first: what would be sent, nothing sent.
  await Promise.all([page.waitForURL(/\/try/), page.click('[data-test="schedule-try-submit"]')]);
  await page.waitForSelector('[data-test="try-ready"]');
  assert.match(await page.textContent('[data-test="try-data"]'), /孙老板/);
  await shot(page, "schedule-try-zh-desktop");
  await Promise.all([page.waitForURL(/\/admin\/schedules\/\d+\/runs\/\d+$/), page.click('button[data-test="schedule-run"]')]);
  await page.waitForSelector('[data-test="run-done"]', { timeout: 60000 });
  assert.match(await page.textContent('[data-test="run-state"]'), /已送达/);
  await shot(page, "schedule-run-zh-desktop");
  await page.goto(GW + "/admin/schedules");
  await shot(page, "schedules-list-zh-desktop");
});
