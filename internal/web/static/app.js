// wxgate console: small progressive enhancements over server-rendered
// pages. Every page works without this file; with it, regions update live
// and forms preview as one types. No inline script anywhere (the CSP
// forbids it), so behaviour hangs off data- attributes.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  // Fragments answer HTML; errors answer JSON {code, message, field}.
  var accept = "text/html, application/json;q=0.9";

  function showError(target, res) {
    if (res.status === 401) {
      window.location.href = "/admin/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
      return Promise.resolve();
    }
    return res.json().then(function (p) {
      var el = document.createElement("p");
      el.className = "form-error";
      el.setAttribute("role", "alert");
      el.textContent = p.message || ("HTTP " + res.status);
      target.replaceChildren(el);
    }, function () {
      target.textContent = "HTTP " + res.status;
    });
  }

  // data-live="url": the element's content is replaced by the fragment at
  // url every data-interval ms until the server says X-Poll-Done.
  function live(el) {
    var url = el.getAttribute("data-live");
    var every = parseInt(el.getAttribute("data-interval") || "1500", 10);
    var status = el.parentNode && el.parentNode.querySelector("[data-live-status]");
    function tick() {
      fetch(url, { headers: { Accept: accept }, credentials: "same-origin", cache: "no-store" }).then(function (res) {
        if (!res.ok) {
          return showError(el, res).then(function () { if (res.status !== 401) schedule(); });
        }
        var done = res.headers.get("X-Poll-Done") === "1";
        return res.text().then(function (html) {
          el.innerHTML = html;
          el.dispatchEvent(new CustomEvent("live:update", { bubbles: true }));
          if (done) {
            el.setAttribute("data-live-done", "1");
            if (status) status.hidden = true;
          } else {
            schedule();
          }
        });
      }, function () {
        if (status) status.textContent = status.getAttribute("data-failed") || status.textContent;
        schedule();
      });
    }
    function schedule() { window.setTimeout(tick, every); }
    if (el.getAttribute("data-live-done") !== "1") schedule();
  }

  // form[data-live-form="url"]: as one types, the form is posted to url and
  // the answer (an HTML fragment) shown in the element data-target names.
  function liveForm(form) {
    var url = form.getAttribute("data-live-form");
    var target = document.querySelector(form.getAttribute("data-target"));
    if (!target) return;
    var timer = null;
    var seq = 0;
    function send() {
      var mine = ++seq;
      var body = new URLSearchParams(new FormData(form));
      fetch(url, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { Accept: accept, "X-CSRF-Token": csrf },
      }).then(function (res) {
        if (mine !== seq) return;
        if (!res.ok) return showError(target, res);
        return res.text().then(function (html) {
          if (mine !== seq) return;
          target.innerHTML = html;
          target.setAttribute("data-preview-seq", String(mine));
          target.dispatchEvent(new CustomEvent("live:update", { bubbles: true }));
        });
      });
    }
    function soon() {
      window.clearTimeout(timer);
      timer = window.setTimeout(send, 250);
    }
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
    send();
  }

  // data-confirm="question" on a form: ask before submitting.
  function confirmForm(form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
    });
  }

  // select[data-autosubmit]: choosing submits the form (filters).
  function autoSubmit(sel) {
    sel.addEventListener("change", function () { sel.form && sel.form.submit(); });
  }

  // button[data-copy="#id"]: copy the text of #id.
  function copyButton(btn) {
    btn.addEventListener("click", function () {
      var src = document.querySelector(btn.getAttribute("data-copy"));
      if (!src || !navigator.clipboard) return;
      navigator.clipboard.writeText(src.textContent.trim()).then(function () {
        btn.classList.add("copied");
        window.setTimeout(function () { btn.classList.remove("copied"); }, 1200);
      });
    });
  }

  // textarea[data-typing="url"]: while one writes, the follower's phone
  // shows "typing…" (posted at most every 15 s, as WeChat's indicator
  // lasts about that long); failures are quiet, the reply still works.
  function typing(el) {
    var url = el.getAttribute("data-typing");
    var last = 0;
    el.addEventListener("input", function () {
      var now = Date.now();
      if (now - last < 15000) return;
      last = now;
      fetch(url, { method: "POST", credentials: "same-origin", headers: { Accept: accept, "X-CSRF-Token": csrf } })
        .catch(function () {});
    });
  }

  // form[data-reload-on-submit-target]: nothing; forms submit normally.

  function wire(root) {
    root.querySelectorAll("[data-live]").forEach(live);
    root.querySelectorAll("form[data-live-form]").forEach(liveForm);
    root.querySelectorAll("form[data-confirm]").forEach(confirmForm);
    root.querySelectorAll("select[data-autosubmit]").forEach(autoSubmit);
    root.querySelectorAll("button[data-copy]").forEach(copyButton);
    root.querySelectorAll("textarea[data-typing]").forEach(typing);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { wire(document); });
  } else {
    wire(document);
  }
})();
