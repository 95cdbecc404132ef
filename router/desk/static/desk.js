// The board's live counts: server-sent events from /events update the
// table's cells in place. Text only (textContent), never HTML.
"use strict";
(function () {
  var board = document.getElementById("board");
  if (!board || !window.EventSource) { return; }
  var es = new EventSource("/events");
  es.addEventListener("counts", function (ev) {
    var list;
    try { list = JSON.parse(ev.data); } catch (e) { return; }
    list.forEach(function (c) {
      var rows = board.querySelectorAll("tr[data-queue]");
      for (var i = 0; i < rows.length; i++) {
        var row = rows[i];
        if (row.getAttribute("data-queue") !== c.queue) { continue; }
        row.querySelector(".waiting").textContent = String(c.waiting);
        row.querySelector(".owned").textContent = String(c.owned);
        row.querySelector(".oldest").textContent = c.waiting ? c.oldest : "\u2013";
        row.className = "sla-" + (c.sla || "ok");
      }
    });
  });
})();
