// Shared by the browser scripts: argument parsing, the line protocol with the test driver,
// launching Debian's Chromium through playwright-core, and failing with a clear reason.
//
// Driver protocol (the Rust test in crates/ssot-cli/tests/cli/browser.rs is the driver):
// a script writes one request per line on stdout, `driver> <command> [args]`, and reads one
// answer per line on stdin, `ok [values...]` or `error <reason>`. Everything else a script
// prints goes to stderr, so stdout carries requests only.

import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";

import { chromium } from "playwright-core";

/** `--name value` pairs; every name in `required` must be there. */
export function parseArgs(argv, required) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`bad arguments near ${JSON.stringify(argv[i])}: expected --name value pairs`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  const missing = required.filter((name) => !(name in args));
  if (missing.length) throw new Error(`missing ${missing.map((n) => "--" + n).join(", ")}`);
  return args;
}

/** The test driver at the other end of stdin/stdout. */
export class Driver {
  constructor() {
    this.lines = [];
    this.waiting = null;
    this.closed = false;
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (line) => {
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = null;
        resolve(line);
      } else {
        this.lines.push(line);
      }
    });
    rl.on("close", () => {
      this.closed = true;
      if (this.waiting) this.waiting(null);
    });
    this.rl = rl;
  }

  /** Sends one request and returns the answer's values; throws on `error` or silence. */
  async ask(command, timeoutMs = 30000) {
    process.stdout.write(`driver> ${command}\n`);
    const line = await new Promise((resolve, reject) => {
      if (this.lines.length) return resolve(this.lines.shift());
      if (this.closed) return resolve(null);
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`the driver did not answer "${command}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
    });
    if (line === null) throw new Error(`the driver closed stdin instead of answering "${command}"`);
    const [word, ...values] = line.trim().split(/\s+/);
    if (word !== "ok") throw new Error(`the driver could not do "${command}": ${line}`);
    return values;
  }

  close() {
    this.rl.close();
  }
}

/**
 * Debian's Chromium, headless, in a fresh profile. The background-networking flags keep it
 * from calling out: on a closed network those connections are refused.
 */
export async function launch(executablePath) {
  const userDataDir = await mkdtemp(path.join(tmpdir(), "ssot-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
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
    viewport: { width: 1100, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/**
 * A page in a fresh Chromium, closed when the script ends; page errors are logged, and on
 * failure the page is saved beside `screenshot` as `<name>-failure.png`.
 */
export async function openPage({ name, chromiumPath, screenshot, state, log }) {
  const browser = await launch(chromiumPath);
  state.cleanup.push(() => browser.close());
  const page = browser.context.pages()[0] || (await browser.context.newPage());
  state.onFailure.push(async () => {
    const file = screenshot.replace(/\.png$/, "-failure.png");
    await page.screenshot({ path: file, fullPage: true });
    process.stderr.write(`${name}: failure screenshot at ${file}\n`);
  });
  page.on("pageerror", (err) => log(`page error: ${err.message}`));
  return page;
}

/** Makes the directory a screenshot goes to. */
export async function prepareScreenshot(file) {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  return path.resolve(file);
}

/** A logger to stderr with elapsed time, named after the script. */
export function logger(name) {
  const start = Date.now();
  return (text) => process.stderr.write(`${name} +${((Date.now() - start) / 1000).toFixed(2)}s: ${text}\n`);
}

/**
 * Waits until `fn(arg)` is truthy in the page; on timeout throws with `what` and the page's
 * state as `describe(page)` reports it, so the failure says what was seen instead.
 */
export async function until(page, what, fn, arg, { timeoutMs = 10000, describe } = {}) {
  try {
    await page.waitForFunction(fn, arg, { timeout: timeoutMs, polling: 50 });
  } catch (err) {
    let seen = "";
    if (describe) {
      try {
        seen = "; page state: " + JSON.stringify(await describe(page));
      } catch (e) {
        seen = `; page state unavailable (${e.message})`;
      }
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
  }
}

/**
 * Runs `body`, then exits: 0 on success, 1 with `FAIL: <reason>` on stderr otherwise.
 * `cleanup` always runs (close the browser); `onFailure` may save a screenshot.
 */
export async function run(name, body) {
  const log = logger(name);
  const state = { cleanup: [], onFailure: [] };
  let code = 0;
  try {
    await body({ log, state });
    log("PASS");
  } catch (err) {
    code = 1;
    process.stderr.write(`${name}: FAIL: ${err && err.message ? err.message : err}\n`);
    for (const f of state.onFailure) await f().catch(() => {});
  } finally {
    for (const f of state.cleanup.reverse()) await f().catch(() => {});
  }
  process.exit(code);
}

/** What the demo's chat page shows, for failure messages. */
export function describeChat(page) {
  return page.evaluate(() => ({
    state: document.getElementById("state").textContent,
    socketStatus: document.getElementById("sockstatus").textContent,
    banner: document.getElementById("banner").hidden ? null : document.getElementById("banner").textContent,
    turns: [...document.querySelectorAll(".turn")].map((t) => ({
      id: t.dataset.messageId,
      user: t.querySelector(".bubble.user")?.textContent,
      state: t.querySelector(".bubble.user")?.dataset.state,
      steps: [...t.querySelectorAll(".step")].map((s) => s.dataset.kind),
      answer: t.querySelector(".bubble.agent")?.textContent,
    })),
    notices: [...document.querySelectorAll(".notice")].map((n) => n.textContent),
    frames: (window.chatFrames || []).slice(-8).map((f) => `${f.direction} ${f.text}`),
  }));
}
