// Webmail: keyboard shortcuts and new-mail notices. No inline script anywhere (CSP).
"use strict";
(function () {
  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }
  function go(el) { if (el && el.href) { window.location.href = el.href; } }

  // The message list: j/k move, Enter or o opens, # or Delete deletes the current one.
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.messages tbody tr"));
  var current = -1;
  function pick(i) {
    if (!rows.length) { return; }
    i = Math.max(0, Math.min(rows.length - 1, i));
    if (current >= 0) { rows[current].classList.remove("current"); }
    current = i;
    rows[i].classList.add("current");
    rows[i].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row, i) {
    row.addEventListener("click", function (e) {
      if (e.target.tagName === "INPUT" || e.target.tagName === "A") { return; }
      window.location.href = row.getAttribute("data-href");
    });
  });
  function deleteCurrent() {
    var form = document.getElementById("list-form");
    if (form && current >= 0) {
      var box = rows[current].querySelector("input[type=checkbox]");
      if (box) { box.checked = true; }
      var button = form.querySelector("button[value=delete]");
      if (button) { button.click(); }
      return true;
    }
    var msg = document.getElementById("delete");
    if (msg) { msg.click(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (e) {
    if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var k = e.key;
    if (rows.length) {
      if (k === "j") { pick(current + 1); e.preventDefault(); return; }
      if (k === "k") { pick(current - 1); e.preventDefault(); return; }
      if ((k === "Enter" || k === "o") && current >= 0) {
        window.location.href = rows[current].getAttribute("data-href"); return;
      }
    } else {
      if (k === "j") { go(document.getElementById("older")); return; }
      if (k === "k") { go(document.getElementById("newer")); return; }
      if (k === "r") { go(document.getElementById("reply")); return; }
      if (k === "a") { go(document.getElementById("replyall")); return; }
      if (k === "f") { go(document.getElementById("forward")); return; }
      if (k === "u") { var back = document.querySelector(".pager a:not([rel])"); go(back); return; }
    }
    if (k === "#" || k === "Delete") { if (deleteCurrent()) { e.preventDefault(); } return; }
    if (k === "c") { go(document.querySelector("a[accesskey=c]")); return; }
    if (k === "/") {
      var q = document.querySelector(".top .search input[type=search]");
      if (q) { q.focus(); e.preventDefault(); }
    }
  });

  // New mail: server-sent events for the folder on screen.
  var folder = document.body.getAttribute("data-folder");
  if (folder && window.EventSource) {
    var source = new EventSource("/events?f=" + encodeURIComponent(folder));
    var title = document.title;
    source.addEventListener("mail", function (ev) {
      var info = {};
      try { info = JSON.parse(ev.data); } catch (err) { return; }
      var link = document.querySelector('.folders a[data-folder="' + CSS.escape(info.folder) + '"]');
      if (link) {
        var badge = link.querySelector(".count");
        if (info.unseen > 0) {
          if (!badge) { badge = document.createElement("span"); badge.className = "count"; link.appendChild(badge); }
          badge.textContent = String(info.unseen);
        } else if (badge) { badge.remove(); }
      }
      if (info["new"]) {
        var note = document.getElementById("newmail");
        if (note) { note.hidden = false; }
        document.title = (info.unseen ? "(" + info.unseen + ") " : "") + title;
      }
    });
    source.addEventListener("end", function () { source.close(); });
  }
})();
