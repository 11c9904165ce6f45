// The dashboard: signs in through /api/v1/auth/login, keeps the session's tokens in sessionStorage
// (never a cookie: the API only accepts them as a bearer header), and draws what
// /api/v1/analytics/{report} answers. Every number on the page is one the API sent; the page only
// formats them and scales bars and cells to them.

const $ = (id) => document.getElementById(id);
// The SVG namespace, as the HTML parser gives it (so no URL of any kind is written in the page's files).
const SVG = document.createRange().createContextualFragment("<svg></svg>").firstChild.namespaceURI;
const SESSION = "crm.session";
const ORGANIZATION = "crm.organization";
const REPORTS = ["funnel", "forecast", "productivity", "geo"];
const NAMES = { funnel: "funnel", forecast: "forecast", productivity: "productivity", geo: "map" };

// ---- small DOM helpers ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  e.append(...children);
  return e;
}

function titled(node, text) {
  node.append(svg("title", {}, text));
  return node;
}

// ---- formatting (no arithmetic on the values: the API's decimals are shown as sent) --------------

const count = (n) => Number(n).toLocaleString("en-US");

function money(s) {
  if (s === null || s === undefined) return "–";
  const neg = s.startsWith("-");
  const [int, frac] = (neg ? s.slice(1) : s).split(".");
  return (neg ? "-" : "") + int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? "." + frac : "");
}

const percent = (s) => (s === null || s === undefined ? "–" : `${s}%`);
const hours = (s) => (s === null || s === undefined ? "–" : `${s} h`);

let userNames = new Map();
const userName = (id) => (id === null ? "(no owner)" : userNames.get(id) || id.slice(0, 8));

// ---- the session ---------------------------------------------------------------------------

function session() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION) || "null");
  } catch {
    return null;
  }
}

function saveTokens(t) {
  sessionStorage.setItem(SESSION, JSON.stringify({ access: t.access_token, refresh: t.refresh_token }));
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problemText(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

/// A problem document as one line: its detail, then each field error with its path.
function problemText(status, p) {
  if (!p || typeof p !== "object") return `the server answered ${status}`;
  const parts = [p.detail || p.title || `the server answered ${status}`];
  for (const e of p.errors || []) parts.push(`${e.path}: ${e.message} (${e.code})`);
  return parts.join("; ");
}

async function send(method, path, body, token) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

let refreshing = null;

/// A call as the signed-in user; an expired access token is traded once for a new pair.
async function call(path) {
  const s = session();
  if (!s) throw new ApiError(401, { detail: "not signed in" });
  try {
    return await send("GET", path, undefined, s.access);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401 || !s.refresh) throw e;
    refreshing ||= send("POST", "/api/v1/auth/refresh", { refresh_token: s.refresh })
      .then(saveTokens)
      .finally(() => (refreshing = null));
    try {
      await refreshing;
    } catch {
      signedOut("Your session ended; sign in again.");
      throw e;
    }
    return send("GET", path, undefined, session().access);
  }
}

// ---- tables and charts ---------------------------------------------------------------------

/// A table: `cols` are [label, numeric?]; each row is [cells, attributes of its <tr>]; a cell is
/// text or [text, attributes]. The first cell of a row is its header.
function table(caption, cols, rows) {
  const head = el("tr", {}, ...cols.map(([label, num]) => el("th", { scope: "col", class: num ? "num" : "" }, label)));
  const body = rows.map(([cells, attrs]) =>
    el(
      "tr",
      attrs || {},
      ...cells.map((c, i) => {
        const [text, a] = Array.isArray(c) ? c : [c, {}];
        const cls = cols[i][1] ? "num" : "";
        return i === 0
          ? el("th", { scope: "row", class: cls, ...a }, text)
          : el("td", { class: cls, ...a }, text);
      }),
    ),
  );
  return el("table", {}, el("caption", {}, caption), el("thead", {}, head), el("tbody", {}, ...body));
}

/// Horizontal bars, one row per item: `series` are [name, css class]; each item is
/// { label, values: [number for the bar's length], texts: [what the bar says] }.
function bars(title, series, items) {
  const rowH = 18 * series.length + 10;
  const labelW = 130;
  const barW = 170;
  const valueW = 100;
  const top = series.length > 1 ? 24 : 4;
  const height = top + rowH * items.length + 4;
  const max = Math.max(0, ...items.flatMap((it) => it.values.filter(Number.isFinite)));
  const chart = svg("svg", {
    viewBox: `0 0 ${labelW + barW + valueW} ${Math.max(height, 30)}`,
    role: "img",
    "aria-label": title,
    class: "bars",
    preserveAspectRatio: "xMinYMin meet",
  });
  chart.append(svg("title", {}, title));
  if (series.length > 1) {
    series.forEach(([name, cls], s) => {
      const x = labelW + s * 90;
      chart.append(svg("rect", { x, y: 6, width: 12, height: 12, class: cls }));
      chart.append(svg("text", { x: x + 16, y: 16, class: "legend" }, name));
    });
  }
  items.forEach((it, i) => {
    const y = top + i * rowH;
    chart.append(svg("text", { x: labelW - 6, y: y + 14, "text-anchor": "end", class: "label" }, it.label));
    series.forEach(([name, cls], s) => {
      const v = it.values[s];
      const w = max > 0 && Number.isFinite(v) ? Math.max((v / max) * barW, v > 0 ? 1 : 0) : 0;
      const by = y + 2 + s * 18;
      chart.append(titled(svg("rect", { x: labelW, y: by, width: w.toFixed(1), height: 14, class: cls }), `${it.label}, ${name}: ${it.texts[s]}`));
      chart.append(svg("text", { x: labelW + w + 4, y: by + 11, class: "value" }, it.texts[s]));
    });
  });
  return chart;
}

function fill(id, chart, tbl, summary) {
  const section = $(id);
  section.querySelector(".chart").replaceChildren(...(chart ? [chart] : []));
  const wrap = section.querySelector(".table-wrap");
  if (wrap) wrap.replaceChildren(...(tbl ? [tbl] : []));
  section.querySelector(".summary").textContent = summary || "";
}

// ---- the reports ---------------------------------------------------------------------------

function drawFunnel(f) {
  const chart = bars(
    "Leads that reached each stage",
    [["reached", "bar-a"]],
    f.steps.map((s) => ({ label: s.label, values: [s.reached], texts: [count(s.reached)] })),
  );
  const tbl = table(
    "Leads by stage",
    [["Stage"], ["Now", 1], ["Reached", 1], ["Dropped", 1], ["Conversion", 1], ["Value now", 1]],
    f.steps.map((s) => [
      [
        [s.label, { "data-field": "label" }],
        [count(s.current), { "data-field": "current" }],
        [count(s.reached), { "data-field": "reached" }],
        [count(s.drop_off), { "data-field": "drop_off" }],
        [percent(s.conversion_percent), { "data-field": "conversion_percent" }],
        [money(s.current_value), { "data-field": "current_value" }],
      ],
      { "data-stage": s.stage },
    ]),
  );
  const summary = `${count(f.total)} leads: ${count(f.won)} won (${money(f.won_value)}), ${count(f.lost)} lost, ${count(f.other)} outside the pipeline; win rate ${percent(f.win_rate_percent)}, overall conversion ${percent(f.overall_conversion_percent)}.`;
  fill("funnel", chart, tbl, summary);
  $("funnel").dataset.total = f.total;
}

function drawForecast(f) {
  const month = (m) => m.month ?? "no date";
  const chart = bars(
    "Weighted open value and value won by month",
    [["weighted", "bar-a"], ["won", "bar-b"]],
    f.months.map((m) => ({
      label: month(m),
      values: [parseFloat(m.weighted_value), parseFloat(m.won_value)],
      texts: [money(m.weighted_value), money(m.won_value)],
    })),
  );
  const tbl = table(
    "Open and won value by expected close month",
    [["Month"], ["Open", 1], ["Pipeline", 1], ["Weighted", 1], ["Won", 1], ["Won value", 1]],
    f.months.map((m) => [
      [month(m), count(m.open_leads), money(m.pipeline_value), money(m.weighted_value), count(m.won_leads), money(m.won_value)],
    ]),
  );
  fill("forecast", chart, tbl, `Total: pipeline ${money(f.pipeline_value)}, weighted ${money(f.weighted_value)}, won ${money(f.won_value)}.`);
}

function drawProductivity(p) {
  const kinds = (k) => Object.entries(k).map(([kind, n]) => `${kind} ${count(n)}`).join(", ");
  const chart = bars(
    "Activities per user",
    [["activities", "bar-a"]],
    p.users.map((u) => ({ label: userName(u.user), values: [u.activities], texts: [count(u.activities)] })),
  );
  const tbl = table(
    "Activities and response time per user",
    [["User"], ["Activities", 1], ["By kind"], ["Leads touched", 1], ["Answered", 1], ["Response avg", 1], ["Median", 1]],
    p.users.map((u) => [
      [userName(u.user), count(u.activities), kinds(u.by_kind), count(u.leads_touched), count(u.response.leads), hours(u.response.average_hours), hours(u.response.median_hours)],
    ]),
  );
  fill(
    "productivity",
    chart,
    tbl,
    `${count(p.activities)} activities over ${count(p.weeks.length)} user-weeks; ${count(p.response.leads)} leads answered: first response ${hours(p.response.average_hours)} on average, ${hours(p.response.median_hours)} median.`,
  );
}

/// The geo report's GeoJSON cells as an SVG grid, north up: each cell shaded by its count.
function drawGeo(g) {
  const cells = g.features.map((f) => f.properties);
  if (cells.length === 0) {
    fill("geo", null, null, `No ${g.entity}s with coordinates.`);
    return;
  }
  const rows = cells.map((c) => c.row);
  const cols = cells.map((c) => c.column);
  const [r0, r1, c0, c1] = [Math.min(...rows), Math.max(...rows), Math.min(...cols), Math.max(...cols)];
  const size = 12;
  const max = Math.max(...cells.map((c) => c.records));
  const corners = g.features.flatMap((f) => f.geometry.coordinates[0]);
  const lon = corners.map((p) => p[0]);
  const lat = corners.map((p) => p[1]);
  const bounds = `${Math.min(...lat)}° to ${Math.max(...lat)}° latitude, ${Math.min(...lon)}° to ${Math.max(...lon)}° longitude`;
  const title = `${count(g.records)} ${g.entity}s in ${count(cells.length)} cells of ${g.cell}°, ${bounds}; darker cells hold more`;
  const w = (c1 - c0 + 1) * size;
  const h = (r1 - r0 + 1) * size;
  const map = svg("svg", { viewBox: `-1 -1 ${w + 2} ${h + 2}`, role: "img", "aria-label": title, class: "grid" });
  map.append(svg("title", {}, title));
  map.append(svg("rect", { x: 0, y: 0, width: w, height: h, class: "grid-bg" }));
  for (const c of cells) {
    const level = Math.max(1, Math.ceil((c.records / max) * 5));
    const where = `${c.center[1]}, ${c.center[0]}`;
    const what = `${count(c.records)} ${g.entity}s${c.value === null ? "" : `, ${money(c.value)}`} around ${where}`;
    map.append(
      titled(
        svg("rect", { x: (c.column - c0) * size, y: (r1 - c.row) * size, width: size, height: size, class: `heat-${level}`, "data-records": c.records }),
        what,
      ),
    );
  }
  const tbl = table(
    "Cells by centre",
    [["Centre"], ["Records", 1], ["Value", 1]],
    cells.map((c) => [[`${c.center[1]}, ${c.center[0]}`, count(c.records), money(c.value)]]),
  );
  const details = el("details", {}, el("summary", {}, "Every cell as a table"), tbl);
  fill("geo", map, null, title + ".");
  $("geo").querySelector(".summary").after(details);
}

const DRAW = { funnel: drawFunnel, forecast: drawForecast, productivity: drawProductivity, geo: drawGeo };

let generation = 0;

async function loadReports() {
  const run = ++generation;
  const q = $("q").value.trim();
  const query = q ? `?q=${encodeURIComponent(q)}` : "";
  $("q-error").replaceChildren();
  $("q").removeAttribute("aria-invalid");
  $("status").textContent = "Loading…";
  document.querySelectorAll("#geo details").forEach((d) => d.remove());
  for (const name of REPORTS) $(name).setAttribute("aria-busy", "true");
  const failures = new Map(); // message -> report names
  await Promise.all(
    REPORTS.map(async (name) => {
      try {
        const answer = await call(`/api/v1/analytics/${name}${query}`);
        if (run !== generation) return;
        DRAW[name](answer);
      } catch (e) {
        if (run !== generation) return;
        fill(name, null, null, "Not shown: see the error under the filter.");
        delete $(name).dataset.total;
        const msg = e instanceof ApiError ? e.message : `the server could not be reached (${e.message})`;
        failures.set(msg, [...(failures.get(msg) || []), NAMES[name]]);
      } finally {
        if (run === generation) $(name).setAttribute("aria-busy", "false");
      }
    }),
  );
  if (run !== generation) return;
  if (failures.size) {
    $("q").setAttribute("aria-invalid", "true");
    $("q-error").replaceChildren(
      // The reports in the page's order, whichever answered first.
      ...[...failures].map(([msg, names]) => {
        const ordered = Object.values(NAMES).filter((n) => names.includes(n));
        return el("p", {}, `${ordered.join(", ")}: ${msg}`);
      }),
    );
  }
  $("status").textContent = failures.size ? "Some reports could not be shown." : `Reports updated${q ? ` for “${q}”` : ""}.`;
}

// ---- signing in and out --------------------------------------------------------------------

async function signedIn() {
  $("sign-in").hidden = true;
  $("main").hidden = false;
  $("sign-out").hidden = false;
  try {
    const users = await call("/api/v1/users?limit=500&fields=name");
    userNames = new Map(users.items.map((u) => [u.id, u.name]));
  } catch {
    userNames = new Map(); // a role that may not list users sees ids
  }
  try {
    const me = await call("/api/v1/auth/me");
    $("who").textContent = `Signed in as ${userName(me.user_id)} (${me.role.name})`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signedOut("Your session ended; sign in again.");
  }
  $("q").focus();
  await loadReports();
}

function signedOut(message) {
  sessionStorage.removeItem(SESSION);
  generation++;
  $("main").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("who").textContent = "";
  $("sign-in-error").textContent = message || "";
  $("password").value = "";
  $(($("organization").value ? "email" : "organization")).focus();
}

$("sign-in-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const organization = $("organization").value.trim();
  const email = $("email").value.trim();
  const password = $("password").value;
  $("sign-in-error").textContent = "";
  if (!organization || !email || !password) {
    $("sign-in-error").textContent = "Organization id, email and password are all needed.";
    return;
  }
  const button = ev.submitter || $("sign-in-form").querySelector("button");
  button.disabled = true;
  try {
    saveTokens(await send("POST", "/api/v1/auth/login", { organization, email, password }));
    localStorage.setItem(ORGANIZATION, organization);
    $("password").value = "";
    await signedIn();
  } catch (e) {
    $("sign-in-error").textContent =
      e instanceof ApiError
        ? e.status === 401
          ? "Those credentials were not accepted."
          : e.message
        : `The server could not be reached (${e.message}).`;
    $("password").focus();
  } finally {
    button.disabled = false;
  }
});

$("filter-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadReports();
});

$("sign-out").addEventListener("click", async () => {
  const s = session();
  if (s) send("POST", "/api/v1/auth/logout", undefined, s.access).catch(() => {});
  signedOut("Signed out.");
});

$("organization").value =
  new URLSearchParams(location.search).get("organization") || localStorage.getItem(ORGANIZATION) || "";
if (session()) signedIn();
else $(($("organization").value ? "email" : "organization")).focus();
