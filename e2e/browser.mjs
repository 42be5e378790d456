// Browser test of the demo page: headless Chromium opens the page (dev mode), waits for the live stream,
// presses the score button and waits until the board shows the new score. Saves a screenshot.
//
// Usage: BASE_URL=http://127.0.0.1:8080/ SCREENSHOT=target/e2e/demo.png node e2e/browser.mjs
// Exits 0 on success; prints one JSON line with what it saw. Every wait is bounded.
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "..", "tools", "package.json"));
const { chromium } = require("playwright-core");

const BASE_URL = process.env.BASE_URL;
const SCREENSHOT = process.env.SCREENSHOT || join(here, "..", "target", "e2e", "demo.png");
const NAME = process.env.DEMO_NAME || "Grace";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = Number(process.env.WAIT_MS || 30000);
if (!BASE_URL) {
  console.error("BASE_URL is required");
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), "scoreboard-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1200, height: 820 },
  deviceScaleFactor: 1,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

let failed = null;
const consoleErrors = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.setDefaultTimeout(WAIT_MS);
  // Pick the demo user before the page script runs.
  await page.addInitScript((name) => localStorage.setItem("scoreboard.demoName", name), NAME);
  await page.goto(BASE_URL);
  await page.waitForSelector('#status[data-state="live"]');
  await page.waitForSelector("#score-button:not([disabled])");
  const me = await page.evaluate(() => state.me.userId);
  const scoreOf = () =>
    page.evaluate((id) => {
      const row = document.querySelector(`#board .row[data-user="${id}"]`);
      return row ? Number(row.dataset.score) : 0;
    }, me);
  const before = await scoreOf();
  const versionBefore = Number((await page.textContent("#version")) || 0);

  await page.click("#score-button");
  await page.waitForFunction(
    ({ id, target }) => {
      const row = document.querySelector(`#board .row[data-user="${id}"]`);
      return row && Number(row.dataset.score) >= target;
    },
    { id: me, target: before + 10 },
  );
  const after = await scoreOf();
  const versionAfter = Number(await page.textContent("#version"));
  const result = await page.textContent("#last-result");
  const rows = await page.$$eval("#board .row", (els) =>
    els.map((e) => ({ user: e.dataset.user, rank: Number(e.dataset.rank), score: Number(e.dataset.score) })),
  );
  // Let the move animation settle so the screenshot shows the final board.
  await page.waitForFunction(() => !document.querySelector("#board .row.flash, #board .row.flash-down"));
  await page.waitForTimeout(700); // the fade-out transition, for a clean picture only
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  if (!(versionAfter > versionBefore)) throw new Error(`version did not move: ${versionBefore} → ${versionAfter}`);
  console.log(JSON.stringify({ ok: true, me, before, after, versionBefore, versionAfter, result, rows, consoleErrors }));
} catch (error) {
  failed = error;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) {
  console.error(`browser test failed: ${failed.message}`);
  if (consoleErrors.length) console.error(`console errors: ${consoleErrors.join(" | ")}`);
  process.exit(1);
}
