// Demo page: follows the live top 10 over EventSource, animates rank changes and, in dev mode only,
// lets a demo user raise their score through the update function. Tokens are never logged.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  config: null,
  token: null,
  me: null,
  source: null,
  version: null,
  prev: null, // Map userId -> {rank, score} of the last rendered snapshot
  rows: new Map(), // userId -> <li>
  retryTimer: null,
  failures: 0,
};

const STATUS_TEXT = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline — retrying",
};

function setStatus(kind) {
  const el = $("#status");
  el.dataset.state = kind;
  $("#status-text").textContent = STATUS_TEXT[kind] || kind;
}

function log(text) {
  const li = document.createElement("li");
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, document.createTextNode(text));
  const list = $("#log");
  list.prepend(li);
  while (list.children.length > 30) list.lastChild.remove();
}

// ---------- the stream ----------

function connect() {
  if (state.source) state.source.close();
  clearTimeout(state.retryTimer);
  if (!state.token) return;
  setStatus("connecting");
  const url = `${state.config.eventsPath}?access_token=${encodeURIComponent(state.token)}`;
  const source = new EventSource(url);
  state.source = source;
  source.onopen = () => {
    state.failures = 0;
    setStatus("live");
  };
  source.addEventListener("leaderboard", (event) => {
    setStatus("live");
    render(JSON.parse(event.data));
  });
  source.onerror = () => {
    if (source !== state.source) return;
    if (source.readyState === EventSource.CONNECTING && tokenExpired(state.token)) {
      // The server ends a stream at its token's exp (": token expired"); reconnecting with the same token
      // is pointless, so get a fresh one (dev mode) or ask for one.
      source.close();
      if (state.config.devMode && state.me) {
        signIn(state.me.name, { quiet: true });
      } else {
        setStatus("offline");
        log("token expired: paste a new one");
      }
      return;
    }
    if (source.readyState === EventSource.CLOSED) {
      // Refused (401/429/503) or gone: the browser will not retry by itself, so we do, with backoff.
      setStatus("offline");
      const delay = Math.min(30000, 1000 * 2 ** Math.min(state.failures++, 5));
      state.retryTimer = setTimeout(async () => {
        if (state.config.devMode && state.me) await signIn(state.me.name, { quiet: true });
        else connect();
      }, delay);
    } else {
      setStatus("reconnecting");
    }
  };
}

// Whether the JWT's exp has passed (unreadable tokens count as not expired: the server decides).
function tokenExpired(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(payload)).exp;
    return typeof exp === "number" && exp <= Date.now() / 1000;
  } catch {
    return false;
  }
}

// ---------- rendering ----------

function rowFor(entry) {
  let li = state.rows.get(entry.userId);
  if (!li) {
    li = document.createElement("li");
    li.className = "row";
    li.dataset.testid = "row";
    li.innerHTML =
      '<span class="rank"></span><span class="name"><strong></strong><small></small></span>' +
      '<span class="score"></span><span class="move"></span>';
    state.rows.set(entry.userId, li);
  }
  return li;
}

function render(snapshot) {
  if (state.version !== null && snapshot.version < state.version) return; // never go back
  const firstRender = state.prev === null;
  const prev = state.prev || new Map();
  const board = $("#board");

  // FLIP, step 1: where each row is now.
  const before = new Map();
  for (const [id, li] of state.rows) before.set(id, li.getBoundingClientRect().top);

  const seen = new Set();
  const changes = [];
  snapshot.entries.forEach((entry) => {
    seen.add(entry.userId);
    const li = rowFor(entry);
    const old = prev.get(entry.userId);
    li.dataset.user = entry.userId;
    li.dataset.rank = String(entry.rank);
    li.dataset.score = String(entry.score);
    li.classList.toggle("me", !!state.me && state.me.userId === entry.userId);
    li.querySelector(".rank").textContent = entry.rank;
    li.querySelector(".name strong").textContent = entry.name || entry.userId;
    li.querySelector(".name small").textContent = entry.userId;
    li.querySelector(".score").textContent = entry.score.toLocaleString();
    const move = li.querySelector(".move");
    move.className = "move";
    if (firstRender) {
      move.textContent = "";
    } else if (!old) {
      move.textContent = "NEW";
      move.classList.add("new");
      changes.push(`${entry.name} enters at #${entry.rank}`);
    } else if (old.rank > entry.rank) {
      move.textContent = `▲ ${old.rank - entry.rank}`;
      move.classList.add("up");
      changes.push(`${entry.name} ▲ to #${entry.rank}`);
    } else if (old.rank < entry.rank) {
      move.textContent = `▼ ${entry.rank - old.rank}`;
      move.classList.add("down");
    } else {
      move.textContent = "–";
    }
    if (!firstRender && old && entry.score !== old.score) {
      changes.push(`${entry.name} +${entry.score - old.score} → ${entry.score}`);
    }
    if (!firstRender && (!old || entry.score !== old.score || old.rank !== entry.rank)) {
      flash(li, old && old.rank < entry.rank ? "flash-down" : "flash");
    }
    board.appendChild(li); // re-appending in order reorders the list
  });
  for (const [id, li] of state.rows) {
    if (!seen.has(id)) {
      li.remove();
      state.rows.delete(id);
    }
  }

  // FLIP, steps 2–4: invert the jump, then let it play.
  for (const [id, li] of state.rows) {
    const top = before.get(id);
    if (top === undefined) continue;
    const dy = top - li.getBoundingClientRect().top;
    if (!dy) continue;
    li.style.transition = "none";
    li.style.transform = `translateY(${dy}px)`;
    requestAnimationFrame(() => {
      requestAnimationFrame(() => {
        li.style.transition = "transform 450ms cubic-bezier(.2,.8,.2,1), background .6s ease, border-color .6s ease";
        li.style.transform = "";
      });
    });
  }

  state.prev = new Map(snapshot.entries.map((e) => [e.userId, { rank: e.rank, score: e.score }]));
  state.version = snapshot.version;
  $("#version").textContent = snapshot.version;
  $("#updated").textContent = snapshot.version
    ? `updated ${new Date(snapshot.updatedAt).toLocaleTimeString()}`
    : "no scores yet";
  $("#empty").hidden = snapshot.entries.length > 0;
  log(changes.length ? `v${snapshot.version} · ${changes.slice(0, 3).join(" · ")}` : `v${snapshot.version} received`);
}

function flash(li, cls) {
  li.classList.remove("flash", "flash-down");
  void li.offsetWidth; // restart the effect
  li.classList.add(cls);
  setTimeout(() => li.classList.remove(cls), 900);
}

// ---------- dev mode: demo users and the score button ----------

async function signIn(name, { quiet = false } = {}) {
  const resp = await fetch("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  if (!resp.ok) {
    setResult(`Could not sign in (${resp.status})`, false);
    return;
  }
  const body = await resp.json();
  state.token = body.token;
  state.me = { userId: body.userId, name: body.name };
  localStorage.setItem("scoreboard.demoName", body.name);
  $("#me").textContent = `${body.name} (${body.userId})`;
  document.querySelectorAll(".chip").forEach((chip) => {
    chip.setAttribute("aria-checked", String(chip.dataset.name === body.name));
  });
  document.querySelectorAll("[data-inc]").forEach((b) => (b.disabled = !state.config.canUpdate));
  if (!state.config.canUpdate) setResult("DEV_UPDATE_URL is not set: the buttons are off.", false);
  for (const [id, li] of state.rows) li.classList.toggle("me", id === body.userId);
  if (!quiet) log(`signed in as ${body.name}`);
  connect();
}

function setResult(text, ok) {
  const el = $("#last-result");
  el.textContent = text;
  el.className = `result ${ok ? "ok" : "err"}`;
}

async function addScore(inc) {
  const started = performance.now();
  try {
    const resp = await fetch("/dev/update", {
      method: "POST",
      headers: {
        authorization: `Bearer ${state.token}`,
        "content-type": "application/json",
        "idempotency-key": crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random(),
      },
      body: JSON.stringify({ scoreIncrement: inc }),
    });
    const body = await resp.json().catch(() => ({}));
    const ms = Math.round(performance.now() - started);
    if (resp.status === 202) setResult(`+${inc} accepted in ${ms} ms (event ${body.eventId})`, true);
    else setResult(`${resp.status}: ${body.detail || body.title || "refused"}`, false);
  } catch (err) {
    setResult(`Update failed: ${err.message}`, false);
  }
}

function setUpDev() {
  $("#dev-panel").hidden = false;
  const names = $("#names");
  for (const name of state.config.demoNames) {
    const chip = document.createElement("button");
    chip.className = "chip";
    chip.type = "button";
    chip.textContent = name;
    chip.dataset.name = name;
    chip.setAttribute("role", "radio");
    chip.setAttribute("aria-checked", "false");
    chip.addEventListener("click", () => signIn(name));
    names.appendChild(chip);
  }
  document.querySelectorAll("[data-inc]").forEach((button) => {
    button.addEventListener("click", () => addScore(Number(button.dataset.inc)));
  });
  const stored = localStorage.getItem("scoreboard.demoName");
  const pick = state.config.demoNames.includes(stored)
    ? stored
    : state.config.demoNames[Math.floor(Math.random() * state.config.demoNames.length)];
  return signIn(pick);
}

function setUpTokenForm() {
  $("#token-panel").hidden = false;
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token-input").value.trim();
    connect();
  });
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    state.token = decodeURIComponent(match[1]);
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
    connect();
  }
}

async function main() {
  state.config = await (await fetch("/demo/config.json")).json();
  if (state.config.devMode) await setUpDev();
  else setUpTokenForm();
}

main().catch(() => setStatus("offline"));
