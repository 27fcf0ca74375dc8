// Keyboard shortcuts for the queue; everything here is an enhancement over plain links and forms.
(function () {
  "use strict";

  function rows() { return Array.from(document.querySelectorAll("tr.queue-row")); }
  function current() { return document.querySelector("tr.queue-row.is-current"); }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(current());
    var next = all[Math.min(all.length - 1, Math.max(0, index + step))] || all[0];
    all.forEach(function (row) { row.classList.remove("is-current"); });
    next.classList.add("is-current");
    next.scrollIntoView({ block: "nearest" });
  }

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["x-csrftoken"]; } catch (e) { return ""; }
  }

  function assignToMe(row) {
    var url = row.dataset.assignUrl;
    var me = document.body.dataset.username;
    if (!url || !me) return;
    var body = new FormData();
    body.append("assignee", me);
    fetch(url, { method: "POST", body: body, headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) row.querySelector(".assignee").textContent = me;
      });
  }

  function toggleHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      // Escape leaves the field; preventDefault keeps a search box from also clearing the query.
      if (event.key === "Escape") { event.preventDefault(); target.blur(); }
      return;
    }
    var row = current();
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "Enter": if (row) window.location.href = row.dataset.href; else return; break;
      case "x":
        if (row) { var box = row.querySelector("input[type=checkbox]"); box.checked = !box.checked; }
        break;
      case "a": if (row) assignToMe(row); break;
      case "/": var search = document.getElementById("queue-search"); if (search) search.focus(); else return; break;
      case "?": toggleHelp(); break;
      default: return;
    }
    event.preventDefault();
  });

  // A swap of the results (search, filters, bulk action) keeps the moderator's place in the list.
  var currentHref = null;
  document.addEventListener("htmx:beforeSwap", function () {
    var row = current();
    currentHref = row ? row.dataset.href : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!currentHref || current()) return;
    rows().forEach(function (row) {
      if (row.dataset.href === currentHref) row.classList.add("is-current");
    });
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-shortcuts-toggle]")) toggleHelp();
  });
})();
