// The dashboard: stage timeline, live uPlot charts, agreement histogram,
// sample browser and the final report, fed by the JSON API and its
// Server-Sent Events. Plain browser JavaScript; uPlot is the global from
// /static/uplot.min.js. `window.dashboard` exposes the state (for tests).
"use strict";

const $ = (sel) => document.querySelector(sel);
const COLOR = "#2563eb";
const COLOR2 = "#d97706";

const state = {
  run: null,
  status: null,
  /** `${stage}/${name}` -> { x: number[], y: number[] } */
  series: new Map(),
  charts: {},
  dirty: new Set(),
  rate: { x: [], y: [], unit: "" },
  agreement: null,
  page: 1,
  q: "",
  selected: null,
  doneKey: null,
  events: 0,
  source: null,
};
globalThis.dashboard = state;

const CHARTS = [
  { id: "sft-loss", title: "SFT loss", stage: "sft", name: "loss" },
  { id: "sft-lr", title: "SFT learning rate", stage: "sft", name: "lr" },
  { id: "rm-loss", title: "Reward model loss", stage: "reward-train", name: "loss" },
  { id: "rm-heldout", title: "Reward model held-out", kind: "heldout" },
  { id: "ppo-reward", title: "PPO reward", stage: "ppo", name: "reward" },
  { id: "ppo-kl", title: "PPO KL", stage: "ppo", name: "kl" },
  { id: "ppo-entropy", title: "PPO entropy", stage: "ppo", name: "entropy" },
  { id: "ppo-clipfrac", title: "PPO clip fraction", stage: "ppo", name: "clipfrac" },
  { id: "ppo-value-loss", title: "PPO value loss", stage: "ppo", name: "value_loss" },
  { id: "throughput", title: "Throughput", kind: "throughput" },
  { id: "agreement", title: "Pseudo-label agreement", kind: "agreement" },
];
const HELDOUT = ["heldout_accuracy", "heldout_auc", "heldout_ece"];
const HELDOUT_LABELS = ["accuracy", "AUC", "ECE"];

// ---- formatting -------------------------------------------------------------

function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function fmtNum(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

function pct(v) {
  return Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : "–";
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function getJson(path) {
  const r = await fetch(path, { headers: { accept: "application/json" } });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return await r.json();
}

const api = (rest = "") => `/api/runs/${encodeURIComponent(state.run)}${rest}`;

// ---- charts -----------------------------------------------------------------

function chartWidth(box) {
  return Math.max(260, box.clientWidth - 14);
}

function makeChart(def) {
  const box = el("div", { class: "chart", id: `chart-${def.id}`, "data-chart": def.id });
  const last = el("span", { class: "last" });
  box.append(el("h3", {}, def.title, last));
  const note = el(
    "p",
    { class: "empty" },
    def.kind === "throughput"
      ? "Units per second of the running stage, while a run is live."
      : "No data yet.",
  );
  box.append(note);
  $("#charts").append(box);
  const bars = def.kind === "heldout" || def.kind === "agreement";
  const opts = {
    width: chartWidth(box),
    height: 180,
    legend: { show: false },
    cursor: { drag: { x: !bars, y: false } },
    scales: {
      x: def.kind === "throughput" ? { time: true } : bars
        ? {
          time: false,
          range: def.kind === "heldout" ? [-0.5, 2.5] : [0, 1],
        }
        : { time: false },
    },
    axes: [
      def.kind === "heldout"
        ? {
          splits: () => [0, 1, 2],
          values: (_u, splits) => splits.map((v) => HELDOUT_LABELS[v] ?? ""),
        }
        : def.kind === "agreement"
        ? {
          splits: () => [0, 0.2, 0.4, 0.6, 0.8, 1],
          values: (_u, s) => s.map((v) => v.toFixed(1)),
        }
        : def.kind === "throughput"
        ? {}
        : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
      { size: 56, values: (_u, splits) => splits.map(fmtNum) },
    ],
    series: [
      {},
      bars
        ? {
          label: def.title,
          stroke: COLOR,
          fill: "rgba(37, 99, 235, 0.35)",
          width: 1,
          paths: uPlot.paths.bars({ size: [def.kind === "heldout" ? 0.5 : 0.9, 100] }),
          points: { show: false },
        }
        : {
          label: def.title,
          stroke: def.kind === "throughput" ? COLOR2 : COLOR,
          width: 2,
          points: { show: false },
          spanGaps: true,
        },
    ],
  };
  const chart = new uPlot(opts, [[], []], box);
  state.charts[def.id] = { def, chart, box, last, note };
}

function chartData(def) {
  if (def.kind === "heldout") {
    const ys = HELDOUT.map((n) => {
      const s = state.series.get(`reward-train/${n}`);
      return s && s.y.length ? s.y[s.y.length - 1] : null;
    });
    return ys.every((v) => v === null) ? [[], []] : [[0, 1, 2], ys];
  }
  if (def.kind === "agreement") {
    const a = state.agreement;
    if (!a || a.questions === 0) return [[], []];
    return [a.bins.map((b) => b + 0.05), a.counts];
  }
  if (def.kind === "throughput") return [state.rate.x, state.rate.y];
  const s = state.series.get(`${def.stage}/${def.name}`);
  return s ? [s.x, s.y] : [[], []];
}

function redraw() {
  for (const id of state.dirty) {
    const c = state.charts[id];
    if (!c) continue;
    const data = chartData(c.def);
    c.chart.setData(data);
    const ys = data[1];
    c.note.hidden = ys.length > 0;
    let label = "";
    if (c.def.kind === "heldout") {
      label = ys.length ? ys.map((v, i) => `${HELDOUT_LABELS[i]} ${fmtNum(v)}`).join(" · ") : "";
    } else if (c.def.kind === "agreement") {
      const a = state.agreement;
      label = a && a.questions
        ? `${a.kept}/${a.questions} kept · mean ${fmtNum(a.mean ?? NaN)}`
        : "";
    } else if (c.def.kind === "throughput") {
      label = ys.length ? `${fmtNum(ys[ys.length - 1])} ${state.rate.unit}/s` : "";
    } else if (ys.length) {
      label = `${fmtNum(ys[ys.length - 1])} @ ${data[0][data[0].length - 1]}`;
    }
    c.last.textContent = label;
  }
  state.dirty.clear();
}

// Redraws are batched on a timer, not requestAnimationFrame: a busy or
// background renderer may hold frames back for long.
let pending = 0;
function scheduleRedraw() {
  if (pending) return;
  pending = setTimeout(() => {
    pending = 0;
    redraw();
  }, 60);
}

function markSeries(stage, name) {
  for (const c of Object.values(state.charts)) {
    const d = c.def;
    if (
      (d.stage === stage && d.name === name) ||
      (d.kind === "heldout" && stage === "reward-train" && HELDOUT.includes(name))
    ) state.dirty.add(d.id);
  }
}

function addRows(rows) {
  for (const r of rows) {
    const key = `${r.stage}/${r.name}`;
    let s = state.series.get(key);
    if (!s) state.series.set(key, s = { x: [], y: [] });
    const v = r.value === null ? null : r.value;
    const n = s.x.length;
    if (n === 0 || r.step > s.x[n - 1]) {
      s.x.push(r.step);
      s.y.push(v);
    } else {
      // A resumed stage logs a step again: the newer value replaces the old.
      const i = s.x.indexOf(r.step);
      if (i >= 0) s.y[i] = v;
    }
    markSeries(r.stage, r.name);
  }
  scheduleRedraw();
}

// ---- timeline ---------------------------------------------------------------

function stageText(s) {
  const parts = [];
  if (s.total > 0) parts.push(`${s.done}/${s.total} ${s.unit}`);
  else if (s.done > 0) parts.push(`${s.done} ${s.unit}`);
  if (s.status === "running") {
    if (s.rate > 0) parts.push(`${fmtNum(s.rate)} ${s.unit}/s`);
    parts.push(`ETA ${fmtDuration(s.etaSeconds)}`);
  } else if (s.status === "done" && s.elapsedSeconds !== null) {
    parts.push(`in ${fmtDuration(s.elapsedSeconds)}`);
  }
  if (s.tokensPerSecond) parts.push(`${fmtNum(s.tokensPerSecond)} tok/s`);
  const info = Object.entries(s.info || {}).map(([k, v]) => `${k}=${fmtNum(v)}`).join(" ");
  if (info && s.status === "running") parts.push(info);
  return parts.join(" · ");
}

function renderTimeline(status) {
  const list = $("#timeline");
  for (const s of status.stages) {
    let li = list.querySelector(`li[data-stage="${s.name}"]`);
    if (!li) {
      li = el(
        "li",
        { class: "stage", "data-stage": s.name },
        el("span", { class: "name" }, s.name),
        el("span", { class: "badge" }),
        el("div", { class: "bar" }, el("div")),
        el("span", { class: "text" }),
      );
      list.append(li);
    }
    li.className = `stage ${s.status}`;
    li.dataset.status = s.status;
    li.dataset.done = String(s.done);
    li.dataset.total = String(s.total);
    const badge = li.querySelector(".badge");
    badge.className = `badge ${s.status}`;
    badge.textContent = s.status;
    const frac = s.status === "done" ? 1 : s.fraction ?? 0;
    li.querySelector(".bar > div").style.width = `${(100 * frac).toFixed(1)}%`;
    li.querySelector(".text").textContent = stageText(s);
  }
  const badge = $("#run-status");
  badge.className = `badge ${status.status}`;
  badge.textContent = status.live ? `${status.status} (live)` : status.status;
}

function sampleRate(status) {
  const cur = status.stages.find((s) => s.status === "running");
  if (!cur || !(cur.rate > 0)) return;
  if (state.rate.unit && state.rate.unit !== cur.unit) {
    state.rate.x.push(status.t);
    state.rate.y.push(null);
  }
  state.rate.unit = cur.unit;
  state.rate.x.push(status.t);
  state.rate.y.push(cur.rate);
  state.dirty.add("throughput");
  scheduleRedraw();
}

function onStatus(status) {
  state.status = status;
  renderTimeline(status);
  sampleRate(status);
  const key = status.stages.map((s) => s.status).join(",") + (status.hasReport ? "+r" : "");
  if (key !== state.doneKey) {
    state.doneKey = key;
    refreshData();
  }
}

// ---- report -----------------------------------------------------------------

function renderReport(r) {
  const box = $("#report");
  if (!r) return;
  box.replaceChildren();
  if (r.eval && r.eval.rows) {
    const rows = Object.entries(r.eval.rows);
    const cols = [...new Set(rows.flatMap(([, v]) => Object.keys(v)))];
    const table = el(
      "table",
      { id: "report-table" },
      el(
        "thead",
        {},
        el("tr", {}, el("th", {}, "model"), ...cols.map((c) => el("th", { class: "num" }, c))),
      ),
      el(
        "tbody",
        {},
        ...rows.map(([name, v]) =>
          el(
            "tr",
            {},
            el("td", {}, name),
            ...cols.map((c) => el("td", { class: "num" }, c in v ? pct(v[c]) : "")),
          )
        ),
      ),
    );
    box.append(
      el(
        "p",
        {},
        `Held-out accuracy on ${r.eval.questions} questions (${r.task}, seed ${r.seed}).`,
      ),
      table,
    );
  }
  const notes = [];
  if (r.pseudoLabels) {
    notes.push(
      `Pseudo-labels: ${pct(r.pseudoLabels.all)} right overall, ${pct(r.pseudoLabels.kept)} on ` +
        `the ${pct(r.pseudoLabels.keptFraction)} kept.`,
    );
  }
  if (r.rewardModel) {
    notes.push(
      `Reward model vs gold: accuracy ${pct(r.rewardModel.accuracy)}, AUC ${
        fmtNum(r.rewardModel.auc)
      } (${r.rewardModel.n} responses).`,
    );
  }
  for (const n of notes) box.append(el("p", { class: "muted" }, n));
  if (Array.isArray(r.compute) && r.compute.length) {
    box.append(
      el(
        "table",
        { id: "compute-table" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["stage", "tokens generated", "tokens trained", "wall", "tokens/s"].map((h, i) =>
              el("th", { class: i ? "num" : "" }, h)
            ),
          ),
        ),
        el(
          "tbody",
          {},
          ...r.compute.map((a) =>
            el(
              "tr",
              {},
              el("td", {}, a.stage),
              el("td", { class: "num" }, a.tokensGenerated),
              el("td", { class: "num" }, a.tokensTrained),
              el("td", { class: "num" }, fmtDuration(a.wallSeconds)),
              el(
                "td",
                { class: "num" },
                a.wallSeconds > 0
                  ? fmtNum((a.tokensGenerated + a.tokensTrained) / a.wallSeconds)
                  : "",
              ),
            )
          ),
        ),
      ),
    );
  }
}

// ---- samples ----------------------------------------------------------------

async function loadSamples() {
  if (!state.run) return;
  const q = encodeURIComponent(state.q);
  const page = await getJson(api(`/samples?page=${state.page}&per_page=15&q=${q}`));
  if (!page) return;
  state.page = page.page;
  const body = $("#sample-table tbody");
  body.replaceChildren(
    ...page.items.map((s) => {
      const tr = el(
        "tr",
        { "data-id": s.id },
        el("td", { class: "q", title: s.prompt }, s.prompt || s.id),
        el("td", {}, s.pseudo_label ?? "–", s.kept === false ? " (dropped)" : ""),
        el("td", { class: "num" }, s.agreement === null ? "–" : pct(s.agreement)),
        el(
          "td",
          { class: "num" },
          s.studentReward === null ? "–" : `${pct(s.studentReward)} of ${s.student}`,
        ),
      );
      if (s.id === state.selected) tr.classList.add("selected");
      tr.addEventListener("click", () => showSample(s.id));
      return tr;
    }),
  );
  $("#sample-count").textContent = `${page.total} questions`;
  $("#page").textContent = `${page.page} / ${page.pages}`;
  $("#prev").disabled = page.page <= 1;
  $("#next").disabled = page.page >= page.pages;
  // Show the first question, or refresh the one shown (its rollouts may have arrived since).
  if (state.selected === null && page.items.length) showSample(page.items[0].id);
  else if (state.selected !== null) showSample(state.selected);
}

async function showSample(id) {
  state.selected = id;
  for (const tr of document.querySelectorAll("#sample-table tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.id === id);
  }
  const d = await getJson(api(`/samples/${encodeURIComponent(id)}`));
  const box = $("#sample-detail");
  if (!d) {
    box.replaceChildren(el("p", { class: "muted" }, "Not found."));
    return;
  }
  const l = d.label;
  const votes = l && l.votes ? Object.entries(l.votes).sort((a, b) => b[1] - a[1]) : [];
  const responseTable = (rows, cols) =>
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, c[0])))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", {}, c[1](r)))))),
    );
  const mark = (ok) =>
    ok === null || ok === undefined
      ? "–"
      : el("span", { class: ok ? "pos" : "neg" }, ok ? "✓" : "✗");
  box.replaceChildren(
    el("h3", {}, d.id),
    el("pre", {}, d.prompt),
    el(
      "p",
      {},
      "pseudo-label ",
      el("b", {}, l?.pseudo_label ?? "–"),
      l ? ` · agreement ${pct(l.agreement)} · ${l.kept ? "kept" : "dropped"}` : "",
    ),
    el("div", {}, ...votes.map(([a, n]) => el("span", { class: "vote" }, `${a}: ${n}`))),
    el("h4", {}, `Teacher (${d.teacher.length})`),
    responseTable(d.teacher, [
      ["T", (r) => r.temperature],
      ["answer", (r) => r.answer ?? "–"],
      ["votes", (r) => r.votes],
      ["label", (r) => mark(r.positive)],
      ["text", (r) => el("pre", {}, r.text)],
    ]),
    el("h4", {}, `Student rollouts (${d.student.length})`),
    d.student.length
      ? responseTable(d.student, [
        ["#", (r) => r.sample],
        ["answer", (r) => r.answer ?? "–"],
        ["reward", (r) => (r.reward === undefined ? "–" : mark(r.reward > 0))],
        ["text", (r) => el("pre", {}, r.text)],
      ])
      : el("p", { class: "muted" }, "None yet."),
  );
}

// ---- data -------------------------------------------------------------------

let refreshing = null;
function refreshData() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      state.agreement = await getJson(api("/labels"));
      state.dirty.add("agreement");
      scheduleRedraw();
      renderReport(await getJson(api("/report")));
      await loadSamples();
    } catch (err) {
      console.error(err);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function connect() {
  state.source?.close();
  const es = new EventSource(api("/events"));
  state.source = es;
  const conn = $("#conn");
  es.addEventListener("open", () => {
    conn.className = "conn live";
    conn.title = "live updates: connected";
  });
  es.addEventListener("error", () => {
    conn.className = "conn down";
    conn.title = "live updates: reconnecting";
  });
  es.addEventListener("metrics", (e) => {
    state.events++;
    const data = JSON.parse(e.data);
    if (data.reset) {
      state.series.clear();
      for (const id of Object.keys(state.charts)) state.dirty.add(id);
    }
    addRows(data.rows);
  });
  es.addEventListener("progress", (e) => {
    state.events++;
    onStatus(JSON.parse(e.data));
  });
}

async function selectRun(name) {
  state.run = name;
  state.series.clear();
  state.rate = { x: [], y: [], unit: "" };
  state.selected = null;
  state.page = 1;
  state.doneKey = null;
  $("#run-name").textContent = name;
  document.title = `distill: ${name}`;
  $("#timeline").replaceChildren();
  for (const id of Object.keys(state.charts)) state.dirty.add(id);
  const status = await getJson(api());
  if (status) onStatus(status);
  connect();
}

async function main() {
  for (const def of CHARTS) makeChart(def);
  addEventListener("resize", () => {
    for (const c of Object.values(state.charts)) {
      c.chart.setSize({ width: chartWidth(c.box), height: 180 });
    }
  });
  $("#prev").addEventListener("click", () => {
    state.page--;
    loadSamples();
  });
  $("#next").addEventListener("click", () => {
    state.page++;
    loadSamples();
  });
  let timer = 0;
  $("#sample-q").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.q = e.target.value;
      state.page = 1;
      loadSamples();
    }, 250);
  });
  const { runs } = await getJson("/api/runs");
  const select = $("#run-select");
  if (runs.length === 0) {
    $("#run-status").textContent = "no runs";
    return;
  }
  const wanted = new URLSearchParams(location.search).get("run");
  const pick = runs.find((r) => r.name === wanted) ?? runs.find((r) => r.status === "running") ??
    runs[runs.length - 1];
  if (runs.length > 1) {
    select.hidden = false;
    select.replaceChildren(...runs.map((r) => el("option", { value: r.name }, r.name)));
    select.value = pick.name;
    select.addEventListener("change", () => {
      history.replaceState(null, "", `?run=${encodeURIComponent(select.value)}`);
      selectRun(select.value);
    });
  }
  await selectRun(pick.name);
}

main().catch((err) => {
  console.error(err);
  $("#run-status").textContent = `error: ${err.message}`;
});
