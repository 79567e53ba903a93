// posterlab dashboard: live figures on a run's page, by polling its JSON.
// Every value is written with textContent (never as HTML): titles and errors are data.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main) { return; }
  var url = main.getAttribute("data-live");
  var every = Math.max(0.5, parseFloat(main.getAttribute("data-poll") || "2")) * 1000;
  var speedUrl = main.getAttribute("data-speed");
  var samples = [];          // {t: Unix seconds, rate: posters per second up to t}
  var last = null;           // {t, ended} of the previous poll
  var WINDOW = 600;          // seconds the chart spans at most

  function figure(name, value) {
    var els = document.querySelectorAll('[data-figure="' + name + '"]');
    for (var i = 0; i < els.length; i++) { els[i].textContent = value; }
  }

  function eta(seconds) {
    if (seconds === null || seconds === undefined) { return ""; }
    var s = Math.floor(seconds);
    if (s >= 3600) { return Math.floor(s / 3600) + "h " + pad(Math.floor(s % 3600 / 60)) + "m"; }
    return s >= 60 ? Math.floor(s / 60) + "m " + pad(s % 60) + "s" : s + "s";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function cell(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) { el.className = cls; }
    return el;
  }

  function stages(status) {
    var body = document.getElementById("stages");
    var total = Math.max(1, status.total);
    Object.keys(status.counts).forEach(function (state) {
      var n = status.counts[state];
      var count = body.querySelector('[data-count="' + CSS.escape(state) + '"]');
      if (!count) {                       // a state this page did not know (e.g. new)
        var row = document.createElement("tr");
        row.setAttribute("data-stage", state);
        row.appendChild(cell("th", state));
        count = cell("td", "", "n"); count.setAttribute("data-count", state);
        row.appendChild(count);
        var td = document.createElement("td"), bar = document.createElement("progress");
        bar.setAttribute("data-bar", state); td.appendChild(bar); row.appendChild(td);
        body.appendChild(row);
      }
      count.textContent = String(n);
      var bar2 = body.querySelector('[data-bar="' + CSS.escape(state) + '"]');
      if (bar2) { bar2.max = total; bar2.value = n; }
    });
  }

  function table(id, rows, empty) {
    var body = document.getElementById(id);
    if (!body) { return; }
    body.replaceChildren();
    if (!rows.length) {
      var tr = document.createElement("tr"); tr.className = "empty";
      var td = cell("td", empty); td.colSpan = 5; tr.appendChild(td); body.appendChild(tr);
      return;
    }
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c, i) {
        tr.appendChild(cell(i === 0 ? "th" : "td", c, typeof c === "number" ? "n" : ""));
      });
      body.appendChild(tr);
    });
  }

  function apply(data) {
    var s = data.status, ended = s.total - s.pending, now = Date.now() / 1000;
    figure("ended", ended); figure("total", s.total);
    figure("posters_per_second", s.posters_per_second);
    figure("eta", eta(s.eta_seconds)); figure("analysis", s.analysis);
    ["api_calls", "rate_limited", "cache_hits", "retries"].forEach(function (k) { figure(k, s[k]); });
    figure("updated", new Date().toLocaleTimeString());
    var progress = document.getElementById("progress");
    if (progress) { progress.max = Math.max(1, s.total); progress.value = ended; }
    stages(s);
    table("workers", data.workers.map(function (w) {
      return [w.name, w.hostname, (w.queues || []).join(", "), w.posters_last_minute,
              w.last_seen.slice(0, 19).replace("T", " ")];
    }), "no worker lately");
    if (data.queues) {
      table("queues", Object.keys(data.queues).map(function (q) { return [q, data.queues[q]]; }), "");
    }
    if (last !== null && now > last.t && (s.pending > 0 || ended > last.ended)) {
      // (a run with nothing left keeps the chart of its last minutes)
      samples.push({t: now, rate: Math.max(0, (ended - last.ended) / (now - last.t))});
      while (samples.length > 2 && samples[0].t < now - WINDOW) { samples.shift(); }
    }
    last = {t: now, ended: ended};
    draw();
  }

  function draw() {
    var canvas = document.getElementById("speed");
    if (!canvas || !canvas.getContext) { return; }
    var g = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 28;
    g.clearRect(0, 0, w, h);
    var top = 1;
    samples.forEach(function (p) { top = Math.max(top, p.rate); });
    g.strokeStyle = "#bbb"; g.fillStyle = "#555"; g.font = "11px sans-serif";
    g.beginPath(); g.moveTo(pad, 4); g.lineTo(pad, h - pad); g.lineTo(w - 4, h - pad); g.stroke();
    g.fillText(top.toFixed(1) + "/s", 2, 12); g.fillText("0", 14, h - pad);
    canvas.setAttribute("data-points", String(samples.length));
    var t0 = samples.length ? samples[0].t : 0;
    var span = samples.length > 1 ? samples[samples.length - 1].t - t0 : 0;
    g.fillText(span >= 120 ? "last " + Math.round(span / 60) + " min"
                           : "last " + Math.round(span) + " s", w - 70, h - 10);
    if (samples.length < 2) { return; }
    g.strokeStyle = "#1f6feb"; g.lineWidth = 2; g.beginPath();
    samples.forEach(function (p, i) {
      var x = pad + (w - pad - 6) * (p.t - t0) / Math.max(span, 1);
      var y = h - pad - (h - pad - 8) * p.rate / top;
      if (i === 0) { g.moveTo(x, y); } else { g.lineTo(x, y); }
    });
    g.stroke();
  }

  function tick() {
    fetch(url, {headers: {"Accept": "application/json"}, cache: "no-store",
                credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(apply)
      .catch(function () { figure("updated", "unreachable, retrying"); })
      .then(function () { setTimeout(tick, every); });
  }
  function history() {     // the run's last minutes from the database, then live polls
    if (!speedUrl) { tick(); return; }
    fetch(speedUrl, {headers: {"Accept": "application/json"}, cache: "no-store",
                     credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        samples = data.points.map(function (p) { return {t: p.t, rate: p.rate}; });
        draw();
      })
      .catch(function () { samples = []; })
      .then(tick);
  }
  history();
})();
