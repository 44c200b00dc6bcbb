// The simulator page: buttons and forms call the control API, then the chat
// is re-rendered by the server (?part=chat).
(function () {
  "use strict";
  const main = document.querySelector("main");
  if (!main) return;
  const appID = main.dataset.appId;
  const openid = main.dataset.openid;
  const chat = document.getElementById("chat");
  const status = document.getElementById("status");

  function say(text, isError) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  async function callAPI(method, path, body) {
    const resp = await fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      throw new Error((data.error && data.error.message) || resp.status + " " + resp.statusText);
    }
    return data;
  }

  function describe(result) {
    const d = result.delivery;
    const parts = [];
    if (result.code) parts.push("登录码 login code: " + result.code);
    if (d) {
      const att = d.attempts ? d.attempts.length : 0;
      parts.push("推送 push: " + d.outcome + (att ? " · " + att + " 次 attempt(s)" : "") + (d.status ? " · HTTP " + d.status : ""));
      if (d.error) parts.push(d.error);
    }
    if (result.verify) parts.push(result.verify.ok ? "验证成功 verified" : "验证失败 " + result.verify.error);
    return parts.join(" | ") || "完成 done";
  }

  async function refreshChat() {
    if (!chat) return;
    const atBottom = chat.scrollTop + chat.clientHeight >= chat.scrollHeight - 20;
    const resp = await fetch("/sim/?part=chat&app_id=" + encodeURIComponent(appID) + "&openid=" + encodeURIComponent(openid));
    if (!resp.ok) return;
    const html = await resp.text();
    if (html !== chat.dataset.last) {
      chat.dataset.last = html;
      chat.innerHTML = html;
      if (atBottom) chat.scrollTop = chat.scrollHeight;
    }
  }

  // Actions that change what the side panels show reload the page.
  const reloading = new Set(["subscribe", "unsubscribe", "block_templates", "unblock_templates", "subscribe_popup", "subscribe_off", "scan"]);

  async function act(type, fields) {
    say("发送中 sending…");
    try {
      const result = await callAPI("POST", "/sim/api/users/" + encodeURIComponent(openid) + "/actions",
        Object.assign({ app_id: appID, type: type }, fields || {}));
      say(describe(result), result.delivery && result.delivery.outcome === "failed");
      if (reloading.has(type)) {
        location.reload();
        return;
      }
      await refreshChat();
    } catch (err) {
      say(err.message, true);
    }
  }

  document.querySelectorAll("button.act").forEach((btn) => {
    btn.addEventListener("click", () => {
      const fields = {};
      if (btn.dataset.ticket) fields.ticket = btn.dataset.ticket;
      act(btn.dataset.type, fields);
    });
  });

  document.querySelectorAll("button.menu-btn").forEach((btn) => {
    // The simulator pushes the event of the button's type (CLICK, VIEW,
    // scancode_*, pic_*, location_select …).
    btn.addEventListener("click", () => act("menu", { title: btn.dataset.path }));
  });

  document.querySelectorAll("form.action").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const fields = {};
      const ids = [];
      for (const el of form.elements) {
        if (!el.name || el.tagName === "BUTTON") continue;
        if (el.type === "checkbox") {
          if (el.name === "template_ids") { if (el.checked) ids.push(el.value); }
          else fields[el.name] = el.checked;
        } else if (el.value !== "") {
          fields[el.name] = el.value;
        }
      }
      if (form.dataset.kind === "create-user") {
        try {
          const user = await callAPI("POST", "/sim/api/users", Object.assign({ app_id: appID }, fields));
          location.href = "/sim/?app_id=" + encodeURIComponent(appID) + "&openid=" + encodeURIComponent(user.openid);
        } catch (err) {
          alert(err.message);
        }
        return;
      }
      let type = form.dataset.type;
      if (type === "subscribe_popup") {
        fields.template_ids = ids;
        const submitter = ev.submitter;
        if (submitter && submitter.name === "off") type = "subscribe_off";
        else fields.accept = !(submitter && submitter.value === "false");
      }
      if (type === "scan" && /^https?:\/\//.test(fields.ticket || "")) {
        fields.url = fields.ticket;
        delete fields.ticket;
      }
      await act(type, fields);
      if (type === "text") form.reset();
    });
  });

  document.querySelectorAll("button.verify").forEach((btn) => {
    btn.addEventListener("click", async () => {
      try {
        const v = await callAPI("POST", "/sim/api/apps/" + encodeURIComponent(btn.dataset.app) + "/verify_url");
        alert(v.ok ? "验证成功 URL verified" : "验证失败 " + v.error);
      } catch (err) {
        alert(err.message);
      }
    });
  });

  if (chat && openid) {
    chat.scrollTop = chat.scrollHeight;
    setInterval(refreshChat, 3000);
  }
})();
