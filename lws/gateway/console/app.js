// lwsgate console: plain JavaScript, no library, no build step.
//
// Data comes from the admin API (fetch, with the admin token as
// Authorization: Bearer) and, live, from the event stream
// (/v1/api/events, a WebSocket that the token buys a one-time ticket
// for): the stream is told what this page looks at ({"watch": ...}) and
// pushes it every second. Every message is a whole state, so the page
// simply draws the last one. Pages are routes of the location's hash:
// #/ (overview), #/links?filters, #/links/ID, #/channels, #/nodes.
"use strict";

(() => {
  // ---------- small helpers ----------

  const $ = (sel, root = document) => root.querySelector(sel);

  // h builds an element: h("td", {class: "num"}, "text", child...).
  // Text is always set as text, never parsed as HTML.
  function h(tag, attrs, ...kids) {
    const el = tag.startsWith("svg:")
      ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const svg = (tag, attrs, ...kids) => h("svg:" + tag, attrs, ...kids);

  const nf = new Intl.NumberFormat();
  const num = (n) => nf.format(n);

  function bytes(n) {
    if (n < 1024) return Math.round(n) + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let u = -1;
    do { n /= 1024; u++; } while (n >= 1024 && u < units.length - 1);
    return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + " " + units[u];
  }

  function short(n) {
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    if (a > 0 && a < 10 && !Number.isInteger(n)) return n.toFixed(1);
    return String(Math.round(n));
  }

  // duration formats milliseconds for people: "850 ms", "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h".
  function duration(ms) {
    if (ms < 0) ms = 0;
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    const hr = Math.floor(m / 60);
    if (hr < 24) return hr + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    const d = Math.floor(hr / 24);
    return d + " d" + (hr % 24 ? " " + (hr % 24) + " h" : "");
  }

  function ago(t) {
    const d = Date.now() - t;
    return d < 1500 ? "just now" : duration(d) + " ago";
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function absolute(t, micros) {
    const d = new Date(t);
    const frac = micros !== undefined ? pad(micros, 6) : pad(d.getMilliseconds(), 3);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${frac}`;
  }

  // when shows a time relative to now, absolute (local and UTC) on hover.
  function when(t, rel = ago) {
    if (!t) return h("span", { class: "muted" }, "never");
    const ms = typeof t === "number" ? t : Date.parse(t);
    return h("time", { datetime: new Date(ms).toISOString(), title: absolute(ms) + " local · " + new Date(ms).toISOString() }, rel(ms));
  }

  // parseMicros reads an RFC 3339 time with microseconds into
  // microseconds since 1970 (Date.parse keeps milliseconds only).
  function parseMicros(s) {
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
    if (!m) return Date.parse(s) * 1000;
    const frac = (m[2] || "").padEnd(6, "0").slice(0, 6);
    return Date.parse(m[1] + m[3]) * 1000 + Number(frac);
  }

  // lwsVersion drops the empty build suffix of libwebsockets' version ("4.1.6-").
  const lwsVersion = (v) => String(v || "").replace(/-$/, "");

  const closeNames = {
    1000: "normal closure", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
    1005: "no status", 1006: "abnormal closure (no close frame)", 1007: "invalid payload", 1008: "policy violation",
    1009: "message too big", 1010: "extension required", 1011: "internal error", 1012: "service restart",
    1013: "try again later", 1014: "bad gateway", 1015: "TLS handshake",
  };
  const closeName = (c) => closeNames[c] || (c >= 4000 ? "application code" : c >= 3000 ? "registered code" : "");

  // ---------- state ----------

  const TOKEN_KEY = "lwsgate.console.token";
  const st = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    hello: null,
    samples: [],
    ws: null,
    gen: 0, // watch commands sent on this connection
    live: false,
    retry: 0,
    retryTimer: 0,
    signedOut: false,
    skipped: 0,
    route: { page: "overview" },
    window: 300, // chart window, seconds
    links: null, // the last page
    linksErr: "",
    link: null, // the watched link's last "link" message
    channels: null,
    nodes: null,
    chartCursor: {},
  };

  // ---------- the admin API ----------

  class APIError extends Error {
    constructor(status, msg, body) { super(msg); this.status = status; this.body = body; }
  }

  async function api(method, path, body, headers = {}) {
    const h2 = Object.assign({}, headers);
    if (st.token) h2.Authorization = "Bearer " + st.token;
    if (body !== undefined && !h2["Content-Type"]) h2["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(path, { method, headers: h2, body: body === undefined ? undefined : (typeof body === "string" ? body : JSON.stringify(body)), cache: "no-store" });
    } catch (e) {
      throw new APIError(0, "the gateway did not answer (" + e.message + ")");
    }
    let data = null;
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (resp.status === 401) {
      showLogin(st.token ? "The token was refused." : "");
      throw new APIError(401, "admin token required", data);
    }
    if (!resp.ok) throw new APIError(resp.status, (data && data.error) || resp.statusText || "HTTP " + resp.status, data);
    return data;
  }

  // ---------- sign-in ----------

  function showLogin(msg) {
    const box = $("#login");
    const err = $("#login-error");
    err.hidden = !msg;
    err.textContent = msg || "";
    if (box.hidden) {
      box.hidden = false;
      $("#login-token").value = "";
      $("#login-token").focus();
    }
    disconnect();
  }

  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const tok = $("#login-token").value.trim();
    if (!tok) return;
    st.token = tok;
    try {
      await api("GET", "/v1/api/nodes");
    } catch (e) {
      if (e.status !== 401) {
        $("#login-error").hidden = false;
        $("#login-error").textContent = e.message;
      }
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, tok);
    $("#login").hidden = true;
    st.signedOut = false;
    $("#signout").hidden = false;
    connect();
    render();
  });

  $("#signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    st.token = "";
    st.signedOut = true;
    $("#signout").hidden = true;
    showLogin("");
  });

  // ---------- the event stream ----------

  function setConn(kind, text) {
    const el = $("#conn");
    el.className = "pill pill-" + kind;
    el.textContent = text;
  }

  function disconnect() {
    clearTimeout(st.retryTimer);
    if (st.ws) {
      st.ws.onclose = null;
      st.ws.close(1000, "signed out");
      st.ws = null;
    }
    st.live = false;
    setConn("down", st.signedOut ? "Signed out" : "Not signed in");
  }

  async function connect() {
    clearTimeout(st.retryTimer);
    if (st.ws) return;
    setConn("wait", "Connecting…");
    let ticket;
    try {
      ticket = await api("POST", "/v1/api/events/ticket");
    } catch (e) {
      if (e.status === 401) return; // the sign-in form is up
      return retryLater(e.message);
    }
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/api/events";
    let ws;
    try {
      ws = new WebSocket(url, ["lwsgate.events.v1", ticket.subprotocol]);
    } catch (e) {
      return retryLater(e.message);
    }
    st.ws = ws;
    st.gen = 0;
    ws.onopen = () => {
      st.live = true;
      st.retry = 0;
      setConn("live", "Live");
      sendWatch();
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      onMessage(m);
    };
    ws.onclose = (ev) => {
      st.ws = null;
      st.live = false;
      if (st.signedOut) return;
      retryLater(ev.code === 1013 ? "too many consoles open" : ev.reason || "connection closed (" + ev.code + ")");
    };
  }

  function retryLater(why) {
    st.retry = Math.min(st.retry + 1, 6);
    const secs = [1, 1, 2, 4, 8, 15, 30][st.retry];
    setConn("down", "Offline: retrying in " + secs + " s");
    $("#conn").title = why;
    st.retryTimer = setTimeout(connect, secs * 1000);
  }

  // sendWatch tells the stream what this page shows.
  function sendWatch() {
    if (!st.ws || st.ws.readyState !== WebSocket.OPEN) return;
    const w = {};
    const r = st.route;
    if (r.page === "links") w.links = linksQuery();
    if (r.page === "link") w.link = r.id;
    if (r.page === "channels") w.channels = true;
    if (r.page === "nodes" || r.page === "overview") w.nodes = true;
    st.gen++;
    st.ws.send(JSON.stringify({ watch: w }));
  }

  function onMessage(m) {
    switch (m.type) {
      case "hello":
        st.hello = m;
        $("#nodename").textContent = m.node + " · " + m.version;
        $("#nodename").title = "node " + m.node + ", lwsgate " + m.version + ", libwebsockets " + lwsVersion(m.libwebsockets);
        break;
      case "update":
        if (m.samples && m.samples.length) {
          const last = st.samples.length ? st.samples[st.samples.length - 1].seq : 0;
          for (const s of m.samples) if (s.seq > last) st.samples.push(s);
          const keep = (st.hello && st.hello.keep) || 600;
          if (st.samples.length > keep) st.samples.splice(0, st.samples.length - keep);
        }
        st.skipped = m.skipped || 0;
        if (m.gen === st.gen) {
          // A page or list made for an older watch is not what is asked now.
          if (st.route.page === "links") { st.links = m.links || null; st.linksErr = m.error || ""; }
          if (m.channels) st.channels = m.channels;
        }
        if (m.nodes) st.nodes = m.nodes;
        if (m.channels || m.nodes) st.missing = m.missing || [];
        update();
        break;
      case "link":
        if (st.route.page === "link" && m.id === st.route.id) {
          st.link = m;
          update();
        }
        break;
      case "error":
        showBanner(m.error, "bad");
        break;
    }
  }

  // ---------- routing ----------

  function parseRoute() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const [path, qs] = raw.split("?");
    const params = new URLSearchParams(qs || "");
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "links" && parts[1]) return { page: "link", id: Number(parts[1]) };
    if (parts[0] === "links") return { page: "links", params };
    if (parts[0] === "channels") return { page: "channels" };
    if (parts[0] === "nodes") return { page: "nodes" };
    return { page: "overview" };
  }

  window.addEventListener("hashchange", () => { route(); });

  function route() {
    const prev = st.route;
    st.route = parseRoute();
    if (st.route.page === "links") {
      const p = st.route.params;
      st.lq = {
        type: p.get("type") || "", user: p.get("user") || "", channel: p.get("channel") || "", node: p.get("node") || "",
        sort: p.get("sort") || "id", order: p.get("order") || "desc", limit: Number(p.get("limit")) || 50,
        after: "", before: "", pageNo: 1,
      };
      if (prev.page !== "links") st.links = null;
    }
    if (st.route.page === "link" && (prev.page !== "link" || prev.id !== st.route.id)) st.link = null;
    render();
    sendWatch();
    if (prev.page !== st.route.page) $("#main").focus({ preventScroll: true });
  }

  function linksQuery() {
    const q = st.lq;
    const out = { sort: q.sort, order: q.order, limit: q.limit };
    for (const k of ["type", "user", "channel", "node", "after", "before"]) if (q[k]) out[k] = q[k];
    return out;
  }

  // setLinksHash keeps the filters in the address, so that a view can
  // be shared or bookmarked (never the cursor, never the token).
  function setLinksHash() {
    const q = st.lq;
    const p = new URLSearchParams();
    for (const k of ["type", "user", "channel", "node"]) if (q[k]) p.set(k, q[k]);
    if (q.sort !== "id") p.set("sort", q.sort);
    if (q.order !== "desc") p.set("order", q.order);
    if (q.limit !== 50) p.set("limit", q.limit);
    const s = p.toString();
    history.replaceState(null, "", "#/links" + (s ? "?" + s : ""));
  }

  // ---------- rendering ----------

  const pages = { overview: pageOverview, links: pageLinks, link: pageLink, channels: pageChannels, nodes: pageNodes };
  let current = null; // the page drawn: {update()}

  function render() {
    for (const a of document.querySelectorAll(".tabs a")) {
      const on = a.dataset.page === (st.route.page === "link" ? "links" : st.route.page);
      if (on) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const main = $("#main");
    main.replaceChildren();
    current = pages[st.route.page](main);
    update();
  }

  function update() {
    if (current) current.update();
    const b = $("#skipbanner");
    if (b) b.hidden = !st.skipped;
  }

  function showBanner(text, kind) {
    const main = $("#main");
    const el = h("div", { class: "banner " + kind, role: "alert" }, text);
    main.prepend(el);
    setTimeout(() => el.remove(), 8000);
  }

  // keepFocus rebuilds part of the page without losing the keyboard's
  // place: the element with the same data-key gets the focus back.
  function keepFocus(container, build) {
    const a = document.activeElement;
    const key = a && container.contains(a) ? a.dataset.key : null;
    build();
    if (key) {
      const el = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (el) el.focus({ preventScroll: true });
    }
  }

  function skipBanner() {
    return h("div", { id: "skipbanner", class: "banner warn", hidden: true, role: "status" },
      "This page is not keeping up with the stream: updates were left out and what you see may be a few seconds old.");
  }

  // ---------- charts (SVG) ----------

  const palette = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)", "var(--c7)"];

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    // Tops whose half is a round number too.
    for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // chartCard makes a chart: spec = {id, title, unit(v), wide, kind: "line"|"bars",
  // series(samples) -> [{name, color, values[]}]}.
  function chartCard(spec) {
    const box = h("div", { class: "chart", tabindex: 0, role: "img", "data-chart": spec.id });
    const legend = h("div", { class: "legend" });
    const tip = h("div", { class: "tip", hidden: true });
    const card = h("section", { class: "card chart-card" + (spec.wide ? " wide" : ""), "aria-label": spec.title },
      h("div", { class: "card-head" }, h("h2", {}, spec.title), h("span", { class: "sub" }, spec.sub || "")),
      box, legend, tip);
    let cursor = null; // index of the sample under the pointer or the keyboard
    let drawn = null;

    function draw() {
      const now = st.samples.length ? st.samples[st.samples.length - 1].t : Date.now();
      const from = now - st.window * 1000;
      const samples = st.samples.filter((s) => s.t > from);
      const series = spec.series(samples);
      const W = Math.max(box.clientWidth, 200), H = box.clientHeight || 170;
      let maxV = 0;
      if (spec.kind === "bars") {
        samples.forEach((_, i) => { let sum = 0; for (const s of series) sum += s.values[i] || 0; maxV = Math.max(maxV, sum); });
      } else {
        for (const s of series) for (const v of s.values) maxV = Math.max(maxV, v);
      }
      const top = niceMax(maxV);
      // The left margin fits the longest axis label.
      const L = 14 + 6.6 * Math.max(...[0, top / 2, top].map((v) => spec.unit(v, true).length)), R = 8, T = 8, B = 20;
      const x = (t) => L + ((t - from) / (now - from || 1)) * (W - L - R);
      const y = (v) => T + (1 - v / top) * (H - T - B);
      const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, "data-points": samples.length, "data-max": maxV });
      const grid = svg("g", { class: "grid axis" });
      for (const f of [0, 0.5, 1]) {
        const yy = y(top * f);
        grid.append(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy }));
        grid.append(svg("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, spec.unit(top * f, true)));
      }
      const minutes = st.window / 60;
      const step = minutes <= 1 ? 15 : minutes <= 5 ? 60 : 120;
      for (let s = 0; s <= st.window; s += step) {
        const xx = x(now - s * 1000);
        grid.append(svg("text", { x: xx, y: H - 4, "text-anchor": s === 0 ? "end" : s === st.window ? "start" : "middle" },
          s === 0 ? "now" : s < 60 ? `−${s}s` : `−${s / 60}m`));
      }
      root.append(grid);
      if (!samples.length) {
        root.append(svg("text", { class: "nodata", x: W / 2, y: H / 2, "text-anchor": "middle" }, "Waiting for the first samples…"));
      } else if (spec.kind === "bars") {
        const bw = Math.max(1, (W - L - R) / (st.window) - 1);
        samples.forEach((smp, i) => {
          let acc = 0;
          series.forEach((s, k) => {
            const v = s.values[i] || 0;
            if (!v) return;
            root.append(svg("rect", { x: x(smp.t) - bw, y: y(acc + v), width: bw, height: Math.max(1, y(acc) - y(acc + v)), fill: s.color || palette[k] }));
            acc += v;
          });
        });
      } else {
        series.forEach((s, k) => {
          const pts = samples.map((smp, i) => `${x(smp.t).toFixed(1)},${y(s.values[i] || 0).toFixed(1)}`);
          const col = s.color || palette[k];
          if (k === 0 && spec.area) {
            root.append(svg("path", { class: "area", d: `M${x(samples[0].t).toFixed(1)},${y(0)} L${pts.join(" L")} L${x(samples[samples.length - 1].t).toFixed(1)},${y(0)} Z`, fill: col }));
          }
          root.append(svg("path", { class: k ? "series second" : "series", d: "M" + pts.join(" L"), stroke: col, "data-series": s.name }));
        });
      }
      if (cursor !== null && samples[cursor]) {
        const xx = x(samples[cursor].t);
        root.append(svg("line", { class: "cursor", x1: xx, x2: xx, y1: T, y2: H - B }));
      }
      box.replaceChildren(root);
      drawn = { samples, series, x, W };
      // The legend: each series with its latest value (or, for bars, its sum over the window).
      legend.replaceChildren(...series.map((s, k) => {
        const v = spec.kind === "bars" ? s.values.reduce((a, b) => a + b, 0) : (s.values[s.values.length - 1] || 0);
        return h("span", {}, h("i", { style: null, class: "sw", "data-c": k }), s.name + ": ", h("b", {}, spec.unit(v)));
      }));
      legend.querySelectorAll("i.sw").forEach((el, k) => { el.style.background = series[k].color || palette[k]; });
      box.setAttribute("aria-label", spec.title + ", last " + duration(st.window * 1000) + ": " +
        series.map((s) => s.name + " " + spec.unit(spec.kind === "bars" ? s.values.reduce((a, b) => a + b, 0) : (s.values[s.values.length - 1] || 0))).join(", "));
      showTip();
    }

    function showTip() {
      if (cursor === null || !drawn || !drawn.samples[cursor]) { tip.hidden = true; return; }
      const smp = drawn.samples[cursor];
      tip.replaceChildren(h("b", {}, absolute(smp.t).slice(11, 19)),
        ...drawn.series.map((s) => h("div", {}, s.name + ": " + spec.unit(s.values[cursor] || 0))));
      tip.hidden = false;
      const left = drawn.x(smp.t) + 16;
      tip.style.left = Math.min(left, drawn.W - tip.offsetWidth) + "px";
    }

    box.addEventListener("pointermove", (ev) => {
      if (!drawn || !drawn.samples.length) return;
      const r = box.getBoundingClientRect();
      const px = ev.clientX - r.left;
      let best = 0, bd = Infinity;
      drawn.samples.forEach((s, i) => { const d = Math.abs(drawn.x(s.t) - px); if (d < bd) { bd = d; best = i; } });
      cursor = best;
      draw();
    });
    box.addEventListener("pointerleave", () => { cursor = null; draw(); });
    box.addEventListener("blur", () => { cursor = null; draw(); });
    box.addEventListener("keydown", (ev) => {
      if (!drawn || !drawn.samples.length) return;
      const n = drawn.samples.length;
      if (ev.key === "ArrowLeft") cursor = cursor === null ? n - 1 : Math.max(0, cursor - 1);
      else if (ev.key === "ArrowRight") cursor = cursor === null ? n - 1 : Math.min(n - 1, cursor + 1);
      else if (ev.key === "Escape") cursor = null;
      else return;
      ev.preventDefault();
      draw();
    });
    if (window.ResizeObserver) new ResizeObserver(() => draw()).observe(box);
    return { el: card, draw };
  }

  // byKey turns per-sample maps (closes by code, refusals by reason) into
  // series: the biggest keys over the window first, the rest as "other".
  function byKey(samples, field, label, maxKeys = 5) {
    const totals = {};
    for (const s of samples) for (const [k, v] of Object.entries(s[field] || {})) totals[k] = (totals[k] || 0) + v;
    const keys = Object.keys(totals).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b, undefined, { numeric: true }));
    const shown = keys.slice(0, maxKeys), rest = keys.slice(maxKeys);
    const out = shown.map((k) => ({ name: label(k), values: samples.map((s) => (s[field] || {})[k] || 0) }));
    if (rest.length) out.push({ name: "other", color: "var(--c7)", values: samples.map((s) => rest.reduce((a, k) => a + ((s[field] || {})[k] || 0), 0)) });
    if (!out.length) out.push({ name: "none", color: "var(--c7)", values: samples.map(() => 0) });
    return out;
  }

  const linkSum = (s, types) => types.reduce((a, t) => a + ((s.links || {})[t] || 0), 0);
  const perSec = (f) => (v, axis) => (axis ? short(v) : f(v)) + "/s";

  function chartSpecs() {
    return [
      { id: "links", title: "Links open", sub: "WebSocket and HTTP, this node", kind: "line", area: true, unit: (v) => short(v),
        series: (ss) => [
          { name: "WebSocket", values: ss.map((s) => linkSum(s, ["tcplisten", "tcpconnect"])) },
          { name: "HTTP", values: ss.map((s) => linkSum(s, ["httplisten", "httpconnect"])) },
        ] },
      { id: "msgs", title: "Messages per second", sub: "WebSocket messages received and sent", kind: "line", unit: perSec((v) => short(v)),
        series: (ss) => [
          { name: "in", values: ss.map((s) => s.msgs_in) },
          { name: "out", values: ss.map((s) => s.msgs_out) },
        ] },
      { id: "bytes", title: "Bytes per second", sub: "message payloads", kind: "line", unit: (v, axis) => (axis ? bytes(v).replace(" ", "") : bytes(v)) + "/s",
        series: (ss) => [
          { name: "in", values: ss.map((s) => s.bytes_in) },
          { name: "out", values: ss.map((s) => s.bytes_out) },
        ] },
      { id: "closes", title: "Links closed, by close code", sub: "per second", kind: "bars", unit: (v) => short(v),
        series: (ss) => byKey(ss, "closes", (k) => k + (closeNames[k] ? " " + closeNames[k].replace(/ \(.*\)/, "") : "")) },
      { id: "refused", title: "Refused connections", sub: "upgrades by status (401 token, 403 origin, 503 draining) and admission limits", kind: "bars", wide: true, unit: (v) => short(v),
        series: (ss) => byKey(ss, "refused", (k) => k) },
    ];
  }

  function windowSwitch(onchange) {
    const seg = h("div", { class: "seg", role: "group", "aria-label": "Chart window" });
    for (const [secs, label] of [[60, "1 min"], [300, "5 min"], [600, "10 min"]]) {
      seg.append(h("button", { type: "button", "aria-pressed": String(st.window === secs), onclick: (ev) => {
        st.window = secs;
        seg.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === ev.currentTarget)));
        onchange();
      } }, label));
    }
    return seg;
  }

  // ---------- Overview ----------

  function kpi(label) {
    const value = h("div", { class: "value" }, "–");
    const detail = h("div", { class: "detail" }, "\u00a0");
    const el = h("div", { class: "kpi" }, h("div", { class: "label" }, label), value, detail);
    return { el, set(v, d) { value.textContent = v; detail.textContent = d || "\u00a0"; } };
  }

  function pageOverview(main) {
    const k = { links: kpi("Links open"), msgs: kpi("Messages/s"), bytes: kpi("Bytes/s"), closes: kpi("Closed · 1 min"), refused: kpi("Refused · 1 min") };
    const charts = chartSpecs().map(chartCard);
    const nodeLine = h("p", { class: "sub" });
    main.append(
      skipBanner(),
      h("div", { class: "page-head" }, h("h1", {}, "Overview"), nodeLine, h("span", { class: "spacer" }), windowSwitch(() => charts.forEach((c) => c.draw()))),
      h("div", { class: "kpis" }, Object.values(k).map((x) => x.el)),
      h("div", { class: "charts" }, charts.map((c) => c.el)),
    );
    return {
      update() {
        const ss = st.samples;
        const last = ss[ss.length - 1];
        if (last) {
          const ws = linkSum(last, ["tcplisten", "tcpconnect"]), http = linkSum(last, ["httplisten", "httpconnect"]);
          k.links.set(num(ws + http), `${num(ws)} WebSocket · ${num(http)} HTTP`);
          k.msgs.set(short(last.msgs_in + last.msgs_out), `in ${short(last.msgs_in)} · out ${short(last.msgs_out)}`);
          k.bytes.set(bytes(last.bytes_in + last.bytes_out), `in ${bytes(last.bytes_in)} · out ${bytes(last.bytes_out)}`);
          const minute = ss.filter((s) => s.t > last.t - 60000);
          const sum = (f) => minute.reduce((a, s) => a + Object.values(s[f] || {}).reduce((x, y) => x + y, 0), 0);
          const codes = {};
          for (const s of minute) for (const [c, n] of Object.entries(s.closes || {})) codes[c] = (codes[c] || 0) + n;
          const top = Object.keys(codes).sort((a, b) => codes[b] - codes[a]).slice(0, 3).map((c) => `${c}×${codes[c]}`).join(" · ");
          k.closes.set(num(sum("closes")), top || "none");
          k.refused.set(num(sum("refused")), sum("refused") ? Object.keys(minute.reduce((a, s) => Object.assign(a, s.refused || {}), {})).join(", ") : "none");
        }
        const self = (st.nodes || []).find((n) => n.self);
        if (self) {
          nodeLine.replaceChildren(`Node ${self.name}, ${self.ready ? "ready" : "draining"}, up `, when(self.started, (t) => duration(Date.now() - t)), ` · lwsgate ${self.version} · libwebsockets ${lwsVersion(self.libwebsockets)}`);
        }
        charts.forEach((c) => c.draw());
      },
    };
  }

  // ---------- Links ----------

  const linkTypes = [
    ["", "any type"], ["tcplisten", "tcplisten (WebSocket, accepted)"], ["httplisten", "httplisten (HTTP, accepted)"],
    ["tcpconnect", "tcpconnect (WebSocket to a backend)"], ["httpconnect", "httpconnect (HTTP to a backend)"],
  ];
  const columns = [
    { key: "id", label: "ID", sort: "id", num: true },
    { key: "type", label: "Type", sort: "type" },
    { key: "listener", label: "Listener", sort: "listener" },
    { key: "node", label: "Node · worker" },
    { key: "user", label: "User", sort: "user" },
    { key: "remote", label: "Remote", sort: "remote" },
    { key: "age", label: "Age", sort: "opened", flip: true },
    { key: "msgs", label: "Msgs in / out", sort: "messages_in", num: true },
    { key: "bytes", label: "Bytes in / out", sort: "bytes_in", num: true },
    { key: "last", label: "Last activity", sort: "last_activity", flip: true },
  ];

  function pageLinks(main) {
    const q = st.lq;
    const typeSel = h("select", { id: "f-type" }, linkTypes.map(([v, l]) => h("option", { value: v, selected: q.type === v }, l)));
    const user = h("input", { id: "f-user", type: "search", value: q.user, placeholder: "any user", autocomplete: "off", spellcheck: "false" });
    const chan = h("input", { id: "f-channel", type: "search", value: q.channel, placeholder: "any channel", autocomplete: "off", spellcheck: "false" });
    const nodeSel = h("select", { id: "f-node" }, h("option", { value: "" }, "any node"));
    const clear = h("button", { type: "button", class: "btn", onclick: () => { q.type = q.user = q.channel = q.node = ""; typeSel.value = nodeSel.value = user.value = chan.value = ""; apply(); } }, "Clear");
    let debounce = 0;
    function apply() {
      q.type = typeSel.value; q.user = user.value.trim(); q.channel = chan.value.trim(); q.node = nodeSel.value;
      q.after = q.before = ""; q.pageNo = 1;
      setLinksHash();
      sendWatch();
    }
    typeSel.addEventListener("change", apply);
    nodeSel.addEventListener("change", apply);
    for (const el of [user, chan]) el.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(apply, 300); });

    const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter links", onsubmit: (e) => { e.preventDefault(); apply(); } },
      h("div", { class: "field" }, h("label", { for: "f-type" }, "Type"), typeSel),
      h("div", { class: "field" }, h("label", { for: "f-user" }, "User"), user),
      h("div", { class: "field" }, h("label", { for: "f-channel" }, "Channel"), chan),
      h("div", { class: "field" }, h("label", { for: "f-node" }, "Node"), nodeSel),
      h("div", { class: "field actions-cell" }, clear));

    // On a phone the table's header is hidden: sorting is a select there.
    const sortSel = h("select", { id: "sortsel", "aria-label": "Sort by" },
      columns.filter((c) => c.sort).map((c) => h("option", { value: c.sort }, c.label)));
    const orderSel = h("select", { id: "ordersel", "aria-label": "Order" }, h("option", { value: "desc" }, "descending"), h("option", { value: "asc" }, "ascending"));
    sortSel.value = q.sort; orderSel.value = q.order;
    const resort = () => { q.sort = sortSel.value; q.order = orderSel.value; q.after = q.before = ""; q.pageNo = 1; setLinksHash(); sendWatch(); redrawHead(); };
    sortSel.addEventListener("change", resort);
    orderSel.addEventListener("change", resort);
    const sortbar = h("div", { class: "sortbar" }, h("div", { class: "field grow" }, h("label", { for: "sortsel" }, "Sort by"), sortSel), h("div", { class: "field" }, h("label", { for: "ordersel" }, "Order"), orderSel));

    const thead = h("thead");
    const tbody = h("tbody");
    const table = h("table", { class: "stack", id: "links-table" }, h("caption", { class: "skip" }, "Links"), thead, tbody);
    const count = h("span", { class: "count", role: "status" });
    const limitSel = h("select", { id: "f-limit", "aria-label": "Rows per page" }, [25, 50, 100, 200].map((n) => h("option", { value: n, selected: q.limit === n }, n + " per page")));
    limitSel.addEventListener("change", () => { q.limit = Number(limitSel.value); q.after = q.before = ""; q.pageNo = 1; setLinksHash(); sendWatch(); });
    const toFirst = () => { q.after = q.before = ""; q.pageNo = 1; sendWatch(); };
    const toPrev = () => { if (st.links && st.links.prev) { q.before = st.links.prev; q.after = ""; q.pageNo = Math.max(1, q.pageNo - 1); sendWatch(); } };
    const toNext = () => { if (st.links && st.links.next) { q.after = st.links.next; q.before = ""; q.pageNo++; sendWatch(); } };
    // The pager is above the table, and repeated below it.
    const pagers = ["pg-", "pgb-"].map((p) => ({
      first: h("button", { type: "button", class: "btn", id: p + "first", onclick: toFirst }, "First"),
      prev: h("button", { type: "button", class: "btn", id: p + "prev", onclick: toPrev }, "‹ Previous"),
      next: h("button", { type: "button", class: "btn", id: p + "next", onclick: toNext }, "Next ›"),
    }));
    const errBox = h("p", { class: "error", role: "alert", hidden: true });
    const empty = h("div", { class: "empty", hidden: true });

    function redrawHead() {
      thead.replaceChildren(h("tr", {}, columns.map((c) => {
        if (!c.sort) return h("th", { scope: "col", class: c.num ? "num" : null }, c.label);
        const active = q.sort === c.sort;
        // Age sorts by opening time the other way round.
        const asc = active && (q.order === "asc") !== !!c.flip;
        const th = h("th", { scope: "col", class: c.num ? "num" : null, "aria-sort": active ? (asc ? "ascending" : "descending") : null },
          h("button", { type: "button", "data-key": "sort-" + c.key, onclick: () => {
            if (q.sort === c.sort) q.order = q.order === "asc" ? "desc" : "asc";
            else { q.sort = c.sort; q.order = c.flip ? "asc" : "desc"; }
            sortSel.value = q.sort; orderSel.value = q.order;
            q.after = q.before = ""; q.pageNo = 1;
            setLinksHash(); sendWatch(); redrawHead();
          } }, c.label, h("span", { class: "arrow", "aria-hidden": "true" }, active ? (asc ? "▲" : "▼") : "")));
        return th;
      })));
    }
    redrawHead();

    const tableWrap = h("div", { class: "table-wrap stackwrap" }, table);
    const bottom = h("div", { class: "pager bottom" }, h("div", { class: "buttons" }, pagers[1].first, pagers[1].prev, pagers[1].next));
    main.append(
      skipBanner(),
      h("div", { class: "page-head" }, h("h1", {}, "Links"), h("span", { class: "sub" }, "every connection the gateway holds, live")),
      filters, sortbar, errBox,
      h("div", { class: "pager" }, count, h("div", { class: "buttons" }, limitSel, pagers[0].first, pagers[0].prev, pagers[0].next)),
      tableWrap,
      empty,
      bottom,
    );

    return {
      update() {
        const nodes = st.nodes || [];
        if (nodeSel.options.length !== nodes.length + 1) {
          nodeSel.replaceChildren(h("option", { value: "" }, "any node"), ...nodes.map((n) => h("option", { value: n.name, selected: q.node === n.name }, n.name)));
        }
        errBox.hidden = !st.linksErr;
        errBox.textContent = st.linksErr;
        const p = st.links;
        for (const pg of pagers) {
          pg.first.disabled = !p || q.pageNo <= 1 && !p.prev;
          pg.prev.disabled = !p || !p.prev;
          pg.next.disabled = !p || !p.next;
        }
        // The bottom pager once the page is long enough to need it.
        bottom.hidden = !p || p.links.length < 15;
        if (!p) {
          count.textContent = st.live ? "Loading…" : "Waiting for the gateway…";
          tbody.replaceChildren();
          return;
        }
        const startN = (q.pageNo - 1) * q.limit + 1;
        count.textContent = p.total === 0 ? "No links" : p.links.length
          ? `${num(startN)}–${num(startN + p.links.length - 1)} of ${num(p.total)} link${p.total === 1 ? "" : "s"}`
          : `0 of ${num(p.total)} links on this page`;
        const filtered = q.type || q.user || q.channel || q.node;
        empty.hidden = p.links.length > 0;
        tableWrap.hidden = !p.links.length;
        if (!p.links.length) {
          empty.replaceChildren(...(filtered
            ? [h("strong", {}, "No links match these filters."), "Clear them, or wait: the table is live."]
            : [h("strong", {}, "No links are open."), "A client that connects to one of the gateway's listeners appears here at once."]));
        }
        keepFocus(tbody, () => tbody.replaceChildren(...p.links.map(linkRow)));
      },
    };
  }

  function linkRow(l) {
    const now = Date.now();
    const opened = Date.parse(l.opened), last = Date.parse(l.last_activity);
    const href = "#/links/" + l.id;
    const td = (label, attrs, ...kids) => h("td", Object.assign({ "data-label": label }, attrs), ...kids);
    const tr = h("tr", { class: "rowlink", "data-id": l.id, onclick: (ev) => { if (ev.target.closest("a")) return; location.hash = href; } },
      td("ID", { class: "num key" }, h("a", { href, "data-key": "link-" + l.id, "aria-label": "Link " + l.id }, String(l.id))),
      td("Type", {}, l.type),
      td("Listener", {}, l.listener || h("span", { class: "muted" }, "—")),
      td("Node · worker", {}, `${l.node} · ${l.worker}`),
      td("User", { class: "trunc", title: l.user || null }, l.user || h("span", { class: "muted" }, "—")),
      td("Remote", { class: "mono" }, l.remote || l.url || "—"),
      td("Age", { class: "num" }, h("time", { datetime: l.opened, title: "opened " + absolute(opened) }, duration(now - opened))),
      td("Msgs in / out", { class: "num" }, `${num(l.messages_in)} / ${num(l.messages_out)}`),
      td("Bytes in / out", { class: "num" }, `${bytes(l.bytes_in)} / ${bytes(l.bytes_out)}`),
      td("Last activity", {}, when(last)),
    );
    return tr;
  }

  // ---------- one link ----------

  // category sorts a callback into a lane of the timeline.
  function category(name) {
    const n = name.replace(/^LWS_CALLBACK_/, "");
    if (/CLOSED|DESTROY|DROP_PROTOCOL|PEER_INITIATED_CLOSE|CONNECTION_ERROR/.test(n)) return "close";
    if (/WRITEABLE/.test(n)) return "tx";
    if (/RECEIVE|HTTP_BODY$|RECEIVE_CLIENT_HTTP/.test(n)) return "rx";
    if (/^HTTP|CLIENT_HTTP|COMPLETED_CLIENT_HTTP/.test(n)) return "http";
    if (/ESTABLISHED|CREATE|INIT|FILTER|CONFIRM|ADD_HEADERS|APPEND_HANDSHAKE|BIND_PROTOCOL|EXTENSION/.test(n)) return "life";
    return "other";
  }
  const lanes = [["life", "Lifecycle"], ["rx", "Receive"], ["tx", "Write"], ["http", "HTTP"], ["close", "Close"], ["other", "Other"]];

  // timeline draws the trace in lanes; time runs left to right, long
  // gaps shortened (a break shows how long they were). The lanes' names
  // stay in view while the plot scrolls (to its newest end at first).
  function timeline(entries, container) {
    const used = lanes.filter(([c]) => entries.some((e) => e.cat === c));
    if (!entries.length) { container.replaceChildren(); return; }
    const laneH = 26, L = 78, T = 12;
    const H = T + used.length * laneH + 18;
    let xpos = 10;
    const xs = [];
    const gaps = [];
    let lastLabel = -Infinity;
    entries.forEach((e, i) => {
      if (i > 0) {
        const d = e.us - entries[i - 1].us; // microseconds
        // The step grows with the log of the gap: bursts stay apart, long waits stay short.
        const step = Math.min(80, 12 + 9 * Math.log10(1 + d / 50));
        if (d >= 100000) {
          const gx = xpos + step / 2;
          gaps.push({ x: gx, d, label: gx - lastLabel > 64 });
          if (gx - lastLabel > 64) lastLabel = gx;
        }
        xpos += step;
      }
      xs.push(xpos);
    });
    const names = svg("svg", { class: "lane-names", width: L, height: H, viewBox: `0 0 ${L} ${H}`, "aria-hidden": "true" });
    const plot = h("div", { class: "plot" });
    container.replaceChildren(names, plot);
    const W = Math.max(xpos + 20, plot.clientWidth || 500);
    const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Timeline of ${entries.length} callbacks` });
    used.forEach(([c, label], k) => {
      const yy = T + k * laneH + laneH / 2;
      names.append(svg("text", { class: "lane-label", x: 8, y: yy + 4 }, label));
      root.append(svg("line", { class: "lane-line", x1: 0, x2: W, y1: yy, y2: yy }));
    });
    for (const g of gaps) {
      const gg = svg("g", { class: "gap" });
      gg.append(svg("line", { x1: g.x, x2: g.x, y1: T - 4, y2: H - 16 }));
      if (g.label) gg.append(svg("text", { x: Math.max(g.x, 2), y: H - 4, "text-anchor": g.x < 30 ? "start" : "middle" }, duration(g.d / 1000)));
      gg.append(svg("title", {}, duration(g.d / 1000) + " without a callback"));
      root.append(gg);
    }
    entries.forEach((e, i) => {
      const k = used.findIndex(([c]) => c === e.cat);
      const yy = T + k * laneH + laneH / 2;
      root.append(svg("circle", { cx: xs[i], cy: yy, r: e.cat === "close" || e.short === "ESTABLISHED" ? 5.5 : 4.5, class: "cat-" + e.cat, "data-name": e.short },
        svg("title", {}, `${e.short} · +${fmtRel(e.rel)} · ${e.abs}`)));
    });
    plot.append(root);
    keepNewest(container, plot);
  }

  // keepNewest keeps a timeline's newest end in view as it grows and as
  // its box changes size (a phone turned, a window narrowed), unless the
  // reader has scrolled back to older callbacks.
  const timelineSizes = new WeakMap(); // container -> its ResizeObserver
  function keepNewest(container, plot) {
    const toEnd = () => { if (container.dataset.back !== "1") plot.scrollLeft = plot.scrollWidth; };
    toEnd();
    plot.addEventListener("scroll", () => {
      container.dataset.back = plot.scrollLeft + plot.clientWidth < plot.scrollWidth - 2 ? "1" : "";
    }, { passive: true });
    if (window.ResizeObserver && !timelineSizes.has(container)) {
      const ro = new ResizeObserver(() => {
        const p = container.querySelector(".plot");
        if (p && container.dataset.back !== "1") p.scrollLeft = p.scrollWidth;
      });
      ro.observe(container);
      timelineSizes.set(container, ro);
    }
  }

  // fmtRel formats microseconds for a trace: µs, ms, then seconds to the millisecond.
  function fmtRel(us) {
    if (us < 1000) return Math.round(us) + " µs";
    if (us < 1e6) return (us / 1000).toFixed(us < 1e4 ? 2 : 1) + " ms";
    if (us < 60e6) return (us / 1e6).toFixed(3) + " s";
    const s = us / 1e6;
    return Math.floor(s / 60) + " min " + (s % 60).toFixed(1) + " s";
  }

  function pageLink(main) {
    const id = st.route.id;
    const title = h("h1", {}, "Link " + id);
    const badges = h("span", { class: "badges" });
    const facts = h("dl", { class: "facts" });
    const endcard = h("div", { class: "endcard", hidden: true, role: "status" });
    const lanesBox = h("div", { class: "lanes", id: "timeline" });
    const list = h("ol", { class: "trace", id: "trace", "aria-label": "Callbacks, oldest first" });
    const traceSub = h("span", { class: "sub" });
    const traceEmpty = h("div", { class: "empty", hidden: true });
    const notice = h("div", { class: "banner", hidden: true });

    // Actions.
    const result = (el, ok, text) => { el.hidden = false; el.className = ok ? "note ok" : "error"; el.textContent = text; };
    const sendOut = h("p", { class: "note", role: "status", hidden: true });
    const sendText = h("textarea", { id: "send-text", rows: 3, placeholder: "a message to this link", spellcheck: "false" });
    const sendType = h("select", { id: "send-type", "aria-label": "Message type" }, h("option", { value: "text" }, "text"), h("option", { value: "binary" }, "binary"));
    const sendForm = h("form", { "aria-label": "Send a message", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api("POST", `/v1/api/links/${id}/send` + (sendType.value === "binary" ? "?type=binary" : ""), sendText.value, { "Content-Type": sendType.value === "binary" ? "application/octet-stream" : "text/plain" });
        result(sendOut, true, `Queued ${bytes(r.queued)} to link ${id}.`);
      } catch (err) { result(sendOut, false, "Not sent: " + err.message); }
    } }, h("label", { for: "send-text" }, "Message"), sendText,
    h("div", { class: "row" }, sendType, h("button", { type: "submit", class: "btn btn-primary", id: "send-btn" }, "Send")), sendOut);

    const closeOut = h("p", { class: "note", role: "status", hidden: true });
    const codeList = h("datalist", { id: "close-codes" }, [1000, 1001, 1008, 1011, 1012, 1013, 4000].map((c) => h("option", { value: c }, closeName(c))));
    const closeCode = h("input", { id: "close-code", type: "number", min: 1000, max: 4999, value: 1000, list: "close-codes", required: true, inputmode: "numeric" });
    const closeReason = h("input", { id: "close-reason", type: "text", maxlength: 123, placeholder: "optional, up to 123 bytes" });
    const closeForm = h("form", { "aria-label": "Close the link", onsubmit: async (e) => {
      e.preventDefault();
      const code = Number(closeCode.value);
      try {
        await api("POST", `/v1/api/links/${id}/close`, { code, reason: closeReason.value });
        result(closeOut, true, `Closing with ${code}…`);
      } catch (err) { result(closeOut, false, "Not closed: " + err.message); }
    } }, h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "close-code" }, "Close code"), closeCode, codeList),
      h("div", { class: "field grow" }, h("label", { for: "close-reason" }, "Reason"), closeReason)),
    h("button", { type: "submit", class: "btn btn-danger", id: "close-btn" }, "Close link"), closeOut);

    const subOut = h("p", { class: "note", role: "status", hidden: true });
    const subChan = h("input", { id: "sub-channel", type: "text", maxlength: 256, placeholder: "channel", spellcheck: "false", autocomplete: "off" });
    const chips = h("ul", { class: "chips", "aria-label": "Channels of this link" });
    const membership = async (op, ch) => {
      try {
        await api("POST", `/v1/api/links/${id}/${op}`, { channel: ch });
        result(subOut, true, (op === "subscribe" ? "Subscribed to " : "Unsubscribed from ") + ch + ".");
      } catch (err) { result(subOut, false, "Not done: " + err.message); }
    };
    const subForm = h("form", { "aria-label": "Subscribe to a channel", onsubmit: (e) => { e.preventDefault(); if (subChan.value.trim()) membership("subscribe", subChan.value.trim()); } },
      h("label", { for: "sub-channel" }, "Channels"), chips,
      h("div", { class: "row" }, h("div", { class: "field grow" }, subChan), h("button", { type: "submit", class: "btn", id: "sub-btn" }, "Subscribe")), subOut);

    const actions = h("aside", { class: "actions", "aria-label": "Actions" },
      h("section", { class: "card" }, h("h2", {}, "Send"), sendForm),
      h("section", { class: "card" }, h("h2", {}, "Close"), closeForm),
      h("section", { class: "card" }, h("h2", {}, "Channels"), subForm));

    const grid = h("div", { class: "link-grid" },
        h("section", { class: "card", "aria-labelledby": "trace-h" },
          h("div", { class: "card-head" }, h("h2", { id: "trace-h" }, "Callback trace"), traceSub),
          endcard, lanesBox, traceEmpty, list),
        actions);
    main.append(
      skipBanner(),
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/links" }, "Links"), " / " + id),
      h("div", { class: "page-head" }, title, badges),
      notice,
      h("section", { class: "card" }, facts),
      grid,
    );

    let lastKey = "";
    return {
      update() {
        const v = st.link;
        if (!v) {
          traceSub.textContent = st.live ? "loading…" : "waiting for the gateway…";
          return;
        }
        const l = v.link;
        const open = v.state === "open";
        actions.hidden = !open;
        grid.classList.toggle("closed", !open);
        // Badges: type and state.
        const stateBadge = open ? h("span", { class: "badge ok", id: "link-state" }, "open")
          : v.state === "closed" ? h("span", { class: "badge bad", id: "link-state" }, "closed " + v.closed.code)
            : h("span", { class: "badge", id: "link-state" }, v.state === "gone" ? "closed" : "unknown");
        badges.replaceChildren(...(l ? [h("span", { class: "badge info" }, l.type), " "] : []), stateBadge);
        notice.hidden = v.state !== "unknown" && v.state !== "gone";
        notice.className = "banner warn";
        notice.textContent = v.state === "unknown" ? `No link was ever issued id ${id}.`
          : v.state === "gone" ? `Link ${id} has closed; the gateway no longer remembers how (it keeps the last 4096 links to close).` : "";
        if (l) {
          const opened = Date.parse(l.opened);
          const fact = (k, ...v2) => h("div", {}, h("dt", {}, k), h("dd", {}, ...v2));
          facts.replaceChildren(
            fact("Type", l.type),
            fact("Listener", l.listener || "— (this side dialled)"),
            fact("Node · worker", `${l.node} · ${l.worker}`),
            fact("User", l.user || h("span", { class: "muted" }, "—")),
            fact("Remote", h("span", { class: "mono" }, l.remote || "—")),
            fact(l.url ? "URL" : "Path", h("span", { class: "mono" }, l.url || l.path || "—")),
            fact("Opened", when(opened), h("div", { class: "muted" }, open ? "age " + duration(Date.now() - opened) : "lived " + duration(Date.parse(v.closed ? v.closed.at : l.last_activity) - opened))),
            fact("Last activity", when(Date.parse(l.last_activity))),
            fact("Messages in / out", `${num(l.messages_in)} / ${num(l.messages_out)}`),
            fact("Bytes in / out", `${bytes(l.bytes_in)} / ${bytes(l.bytes_out)}`),
            fact("Queued", bytes(l.queued)),
            fact("Channels", (l.channels || []).length ? (l.channels || []).join(", ") : h("span", { class: "muted" }, "none")),
          );
          keepFocus(chips, () => chips.replaceChildren(...(l.channels || []).map((ch) => h("li", {}, ch,
            h("button", { type: "button", "aria-label": "Unsubscribe from " + ch, title: "Unsubscribe", "data-key": "unsub-" + ch, onclick: () => membership("unsubscribe", ch) }, "×")))));
        }
        if (v.closed) {
          const c = v.closed;
          endcard.hidden = false;
          endcard.className = "endcard" + (c.code === 1000 || c.code === 1001 ? " normal" : "");
          endcard.replaceChildren(h("strong", {}, `Closed by the ${c.by} with ${c.code}`), c.reason ? ` “${c.reason}”` : "", ", ", when(c.at), ".",
            closeName(c.code) ? h("div", { class: "muted" }, `${c.code}: ${closeName(c.code)}`) : "");
        } else endcard.hidden = true;

        // The trace: only redrawn when it changed.
        const key = v.state + ":" + v.trace.length + ":" + (v.trace.length ? v.trace[v.trace.length - 1].time : "");
        const size = (st.hello && st.hello.link_trace) || 0;
        traceSub.textContent = !size ? "link traces are off (log.link_trace)"
          : (open ? "live · " : "") + `${v.trace.length} callback${v.trace.length === 1 ? "" : "s"}` + (v.trace.length >= size ? ` (the last ${size} are kept)` : "");
        traceEmpty.hidden = v.trace.length > 0;
        if (!v.trace.length) {
          traceEmpty.replaceChildren(h("strong", {}, "No callbacks to show."),
            size ? (v.state === "gone" ? "This link closed too long ago." : "") : "Set log.link_trace to keep each link's callbacks.");
        }
        if (key === lastKey) return;
        lastKey = key;
        const base = l ? Date.parse(l.opened) * 1000 : (v.trace.length ? parseMicros(v.trace[0].time) : 0);
        const entries = v.trace.map((e) => {
          const us = parseMicros(e.time);
          const short = e.name.replace(/^LWS_CALLBACK_/, "");
          return { us, short, name: e.name, reason: e.reason, cat: category(e.name), rel: Math.max(0, us - base), abs: absolute(Math.floor(us / 1000), us % 1e6) };
        });
        timeline(entries, lanesBox);
        const items = [];
        entries.forEach((e, i) => {
          const d = i ? e.us - entries[i - 1].us : 0;
          if (d >= 1e6) items.push(h("li", { class: "gapline", "aria-hidden": "true" }, `· · · ${duration(d / 1000)} · · ·`));
          items.push(h("li", { class: e.cat === "close" ? "cat-close-row" : null, "data-name": e.short, title: e.abs + " · reason " + e.reason },
            h("span", { class: "t" }, "+" + fmtRel(e.rel)),
            h("span", { class: "d" }, i ? "Δ" + fmtRel(d) : ""),
            h("i", { class: "dot cat-" + e.cat, "aria-hidden": "true" }),
            h("span", { class: "n" }, e.short, " ", h("small", {}, "(" + e.reason + ")"))));
        });
        list.replaceChildren(...items);
      },
    };
  }

  // ---------- Channels ----------

  function pageChannels(main) {
    const filter = h("input", { id: "ch-filter", type: "search", placeholder: "filter by name", autocomplete: "off", spellcheck: "false", "aria-label": "Filter channels" });
    const tbody = h("tbody");
    const count = h("span", { class: "sub", role: "status" });
    const empty = h("div", { class: "empty", hidden: true });
    const chMissing = h("p", { class: "hint warn-text", role: "status", hidden: true });
    filter.addEventListener("input", () => current.update());

    const pubOut = h("p", { class: "note", role: "status", hidden: true });
    const pubChan = h("input", { id: "pub-channel", type: "text", required: true, maxlength: 256, placeholder: "channel", spellcheck: "false", autocomplete: "off" });
    const pubData = h("input", { id: "pub-data", type: "text", placeholder: "message (text)", spellcheck: "false", autocomplete: "off" });
    const pubForm = h("form", { "aria-label": "Publish to a channel", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await api("POST", "/v1/api/publish", { channel: pubChan.value.trim(), data: pubData.value });
        pubOut.hidden = false;
        pubOut.className = r.failed ? "error" : "note ok";
        pubOut.textContent = `Delivered to ${num(r.delivered)} link${r.delivered === 1 ? "" : "s"}` + (r.failed ? `; ${num(r.failed)} failed (closing or too slow: closed with 1008).` : ".");
      } catch (err) {
        pubOut.hidden = false; pubOut.className = "error"; pubOut.textContent = "Not published: " + err.message;
      }
    } }, h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "pub-channel" }, "Channel"), pubChan),
      h("div", { class: "field grow" }, h("label", { for: "pub-data" }, "Message"), pubData),
      h("button", { type: "submit", class: "btn btn-primary", id: "pub-btn" }, "Publish")), pubOut);

    main.append(
      skipBanner(),
      h("div", { class: "page-head" }, h("h1", {}, "Channels"), count),
      h("section", { class: "card" }, h("h2", {}, "Publish"), h("p", { class: "hint" }, "Sends a text message to every link subscribed to the channel."), pubForm),
      h("section", { class: "section card" },
        h("div", { class: "card-head" }, h("h2", {}, "Channels with members"), filter),
        h("div", { class: "table-wrap stackwrap" }, h("table", { class: "stack", id: "channels-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Channel"), h("th", { scope: "col", class: "num" }, "Members"), h("th", { scope: "col", class: "num" }, "Users"), h("th", { scope: "col" }, "Share"), h("th", { scope: "col" }, ""))), tbody)),
        empty, chMissing,
        h("p", { class: "hint" }, "Members and distinct users are counted over every node of the cluster that answered. A channel exists while it has a member.")),
    );
    return {
      update() {
        const c = st.channels;
        if (!c) { count.textContent = st.live ? "loading…" : "waiting for the gateway…"; return; }
        const f = filter.value.trim().toLowerCase();
        const list = c.list.filter((x) => !f || x.name.toLowerCase().includes(f));
        const most = Math.max(1, ...c.list.map((x) => x.members));
        missingNote(chMissing);
        count.textContent = `${num(c.total)} channel${c.total === 1 ? "" : "s"}` + (c.total > c.list.length ? ` (the ${num(c.list.length)} largest shown)` : "");
        empty.hidden = list.length > 0;
        empty.replaceChildren(...(c.total ? [h("strong", {}, "No channel matches “" + filter.value + "”.")]
          : [h("strong", {}, "No channels."), "A channel appears when a link subscribes to it, by a rule or from a link's page."]));
        keepFocus(tbody, () => tbody.replaceChildren(...list.map((x) => {
          const bar = h("div", { class: "bar", role: "presentation" }, h("i"));
          bar.firstChild.style.width = (100 * x.members / most).toFixed(1) + "%";
          return h("tr", { "data-channel": x.name },
            h("td", { "data-label": "Channel", class: "mono key" }, x.name),
            h("td", { "data-label": "Members", class: "num" }, num(x.members)),
            h("td", { "data-label": "Users", class: "num" }, num(x.users)),
            h("td", { "data-label": "Share" }, bar),
            h("td", { "data-label": "" }, h("a", { href: "#/links?channel=" + encodeURIComponent(x.name), "data-key": "ch-" + x.name }, "View links")));
        })));
      },
    };
  }

  // ---------- Nodes ----------

  // missingNote says which nodes of the cluster did not answer for the
  // channels and nodes shown (their members and links are not counted).
  function missingNote(el) {
    const m = st.missing || [];
    el.hidden = m.length === 0;
    el.textContent = m.length ? `Not answering, so not counted: ${m.join(", ")}.` : "";
  }

  function pageNodes(main) {
    const grid = h("div", { class: "nodes" });
    const count = h("span", { class: "sub", role: "status" });
    const nodesMissing = h("p", { class: "hint warn-text", role: "status", hidden: true });
    main.append(skipBanner(), h("div", { class: "page-head" }, h("h1", {}, "Nodes"), count), nodesMissing, grid,
      h("p", { class: "hint" }, "Without cluster mode the cluster is this node alone: it is never fenced and holds no lease."));
    return {
      update() {
        const ns = st.nodes;
        if (!ns) { count.textContent = st.live ? "loading…" : "waiting for the gateway…"; return; }
        count.textContent = `${ns.length} node${ns.length === 1 ? "" : "s"}`;
        missingNote(nodesMissing);
        grid.replaceChildren(...ns.map((n) => {
          const fact = (k, ...v) => h("div", {}, h("dt", {}, k), h("dd", {}, ...v));
          const most = Math.max(1, ...n.worker_list.map((w) => w.links));
          return h("section", { class: "card", "data-node": n.name, "aria-label": "Node " + n.name },
            h("div", { class: "card-head" }, h("h2", {}, n.name, " ", n.self ? h("span", { class: "badge info" }, "this node") : null),
              h("span", {}, n.ready ? h("span", { class: "badge ok" }, "ready") : h("span", { class: "badge warn" }, "not ready"), " ",
                n.fenced ? h("span", { class: "badge bad" }, "fenced") : h("span", { class: "badge" }, "not fenced"))),
            h("dl", { class: "facts" },
              fact("Links", num(n.links)),
              fact("Lease age", n.lease_age === null ? h("span", { class: "muted", title: "no cluster registry without cluster mode" }, "— (no cluster)") : duration(n.lease_age * 1000)),
              fact("Up", when(n.started, (t) => duration(Date.now() - t))),
              fact("Versions", `lwsgate ${n.version}`, h("div", { class: "muted" }, `libwebsockets ${lwsVersion(n.libwebsockets)}`))),
            h("h3", {}, `Workers (${n.workers})`),
            h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Worker"), h("th", { scope: "col", class: "num" }, "Links"), h("th", { scope: "col" }, "Share"))),
              h("tbody", {}, n.worker_list.map((w) => {
                const bar = h("div", { class: "bar" }, h("i"));
                bar.firstChild.style.width = (100 * w.links / most).toFixed(1) + "%";
                return h("tr", {}, h("td", {}, "worker " + w.id), h("td", { class: "num" }, num(w.links)), h("td", {}, bar));
              })))));
        }));
      },
    };
  }

  // ---------- start ----------

  async function start() {
    route();
    // A first call tells whether a token is needed (and whether the one
    // this tab kept still works).
    try {
      await api("GET", "/v1/api/nodes");
    } catch (e) {
      if (e.status === 401) return; // the sign-in form is up
      setConn("down", "Offline: retrying");
      $("#conn").title = e.message;
      setTimeout(start, 3000);
      return;
    }
    $("#signout").hidden = !st.token;
    connect();
  }
  // Relative times tick even when nothing else changes.
  setInterval(() => { if (!st.live) update(); }, 1000);
  start();
})();
