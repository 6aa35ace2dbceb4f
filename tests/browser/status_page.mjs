// The gateway's status page in a real headless Chromium: connect, receive, Redis restart,
// a dropped socket that resumes from its last id. Run by crates/ssot-cli/tests/cli/browser.rs.
//
//   node status_page.mjs --url http://127.0.0.1:<port> --token <jwt> \
//        --screenshot target/browser-artifacts/status_page.png [--chromium /usr/bin/chromium]
//
// Driver requests (see lib.mjs): `publish <n>` → `ok <id>...` (n events for the token's
// user, in publish order), `kill-redis` → `ok`, `start-redis` → `ok` (same port, AOF).

import { Driver, openPage, parseArgs, prepareScreenshot, run, until } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2), ["url", "token", "screenshot"]);
const chromiumPath = args.chromium || "/usr/bin/chromium";

// What the page shows, for failure messages.
const describe = (page) =>
  page.evaluate(() => ({
    state: document.getElementById("state").textContent,
    socketStatus: document.getElementById("sockstatus").textContent,
    statusHistory: window.__statusHistory,
    events: (window.ssotEvents || []).map((e) => e.id),
    log: [...document.querySelectorAll("#log div")].slice(-8).map((d) => d.textContent),
  }));

await run("status_page", async ({ log, state }) => {
  const driver = new Driver();
  state.cleanup.push(async () => driver.close());
  const screenshot = await prepareScreenshot(args.screenshot);

  const page = await openPage({ name: "status_page", chromiumPath, screenshot, state, log });
  page.on("response", (res) => {
    if (res.status() >= 400) log(`HTTP ${res.status()} for ${res.url()}`);
  });

  // Every WebSocket the page opens, and whether it closed.
  const sockets = [];
  page.on("websocket", (ws) => {
    const entry = { url: ws.url(), closed: false };
    sockets.push(entry);
    ws.on("close", () => (entry.closed = true));
  });

  // Every socket status the page displays, in order (the page's own element, not the wire).
  await page.addInitScript(() => {
    window.__statusHistory = [];
    document.addEventListener("DOMContentLoaded", () => {
      const el = document.getElementById("sockstatus");
      new MutationObserver(() => window.__statusHistory.push(el.textContent)).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
  });

  const published = [];
  const publish = async (n) => {
    const ids = await driver.ask(`publish ${n}`);
    if (ids.length !== n) throw new Error(`asked for ${n} events, the driver published ${ids.length}`);
    published.push(...ids);
    return ids;
  };
  const socketStatus = (want, timeoutMs = 10000) =>
    until(page, `socket status "${want}"`, (w) => document.getElementById("sockstatus").textContent === w, want, {
      timeoutMs,
      describe,
    });
  // The page's events are exactly the published ones: all there, once each, in order.
  const eventsArrive = async (what) => {
    await until(
      page,
      `${published.length} events (${what})`,
      (n) => (window.ssotEvents || []).length >= n,
      published.length,
      { describe },
    );
    const got = await page.evaluate(() => window.ssotEvents.map((e) => e.id));
    if (JSON.stringify(got) !== JSON.stringify(published)) {
      throw new Error(`${what}: the page has events ${JSON.stringify(got)}, published ${JSON.stringify(published)}`);
    }
    log(`${what}: ${got.length} events, in order, each once`);
  };

  log(`opening ${args.url}/#token=…`);
  await page.goto(`${args.url}/#token=${encodeURIComponent(args.token)}`);
  await socketStatus("ok");
  await until(page, 'state "open"', () => document.getElementById("state").textContent === "open", null, { describe });
  log("connected, socket status ok");

  await publish(3);
  await eventsArrive("live delivery");

  // Redis killed: the socket stays open and says degraded; restarted: ok, then new events.
  await driver.ask("kill-redis");
  log("redis killed");
  await socketStatus("degraded");
  log("page shows degraded");
  await driver.ask("start-redis");
  log("redis restarted");
  await socketStatus("ok", 15000);
  const history = await page.evaluate(() => window.__statusHistory);
  const degradedAt = history.lastIndexOf("degraded");
  if (degradedAt < 0 || !history.slice(degradedAt + 1).includes("ok")) {
    throw new Error(`expected "degraded" then "ok" after the Redis restart, the page showed ${JSON.stringify(history)}`);
  }
  if (sockets.length !== 1 || sockets[0].closed) {
    throw new Error(`the socket must stay open through a Redis restart; sockets: ${JSON.stringify(sockets)}`);
  }
  log("page shows ok again, same socket");
  await publish(3);
  await eventsArrive("after the Redis restart");

  // A dropped socket: hold the client's reconnect until events were published meanwhile,
  // then let it resume with its last id (the client's own reconnect path, after= last id).
  const lastBeforeClose = published[published.length - 1];
  await page.evaluate(() => {
    const client = window.ssotClient;
    const held = new Promise((resolve) => (window.__releaseReconnect = resolve));
    client.connect = async function () {
      await held;
      delete client.connect; // back to the prototype's connect
      return client.connect();
    };
    client.socket.close();
  });
  await until(page, 'state "closed" after socket.close()', () => document.getElementById("state").textContent === "closed", null, {
    describe,
  });
  log("socket closed by the page; publishing while disconnected");
  await publish(3);
  await page.evaluate(() => window.__releaseReconnect());
  await until(page, 'state "open" again', () => document.getElementById("state").textContent === "open", null, { describe });
  await eventsArrive("resumed after the socket closed");
  if (sockets.length !== 2) throw new Error(`expected exactly one reconnect, sockets: ${JSON.stringify(sockets)}`);
  const resumeAfter = new URL(sockets[1].url).searchParams.get("after");
  if (resumeAfter !== lastBeforeClose) {
    throw new Error(`the reconnect must resume after ${lastBeforeClose}, it asked for after=${resumeAfter}`);
  }
  log(`reconnected with after=${resumeAfter}`);
  await socketStatus("ok");
  await publish(2);
  await eventsArrive("live again after the resume");

  const log1011 = await page.evaluate(() =>
    [...document.querySelectorAll("#log div")].map((d) => d.textContent).filter((t) => t.includes("code=1011")),
  );
  if (log1011.length) throw new Error(`close code 1011 seen: ${JSON.stringify(log1011)}`);

  // Let the status cards show a fresh poll of /v1/status before the picture.
  await until(page, 'the Redis card "ok"', () => document.getElementById("redis").textContent === "ok", null, { describe });
  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot at ${screenshot}`);
});
