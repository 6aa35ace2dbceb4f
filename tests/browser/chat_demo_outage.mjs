// The `ssot demo` chat page while the demo's redis-server is down: a message sent then is
// kept as pending (across a reload too), the demo restarts the server, the page resends the
// message with the same id, and it runs exactly once. Run by crates/ssot-cli/tests/cli/browser.rs.
//
//   node chat_demo_outage.mjs --url 'http://127.0.0.1:<port>/demo#token=<jwt>' \
//        --screenshot target/browser-artifacts/chat_demo_outage.png [--chromium /usr/bin/chromium]
//
// Driver requests (see lib.mjs): `stop-redis` → `ok` (SIGSTOP to the demo's redis-server),
// `kill-redis` → `ok <pid>` (SIGKILL to it; the demo restarts it).

import { Driver, describeChat, openPage, parseArgs, prepareScreenshot, run, until } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2), ["url", "screenshot"]);
const chromiumPath = args.chromium || "/usr/bin/chromium";
const describe = describeChat;

await run("chat_demo_outage", async ({ log, state }) => {
  const driver = new Driver();
  state.cleanup.push(async () => driver.close());
  const screenshot = await prepareScreenshot(args.screenshot);
  const page = await openPage({ name: "chat_demo_outage", chromiumPath, screenshot, state, log });
  const socketStatus = (want, timeoutMs) =>
    until(page, `socket status "${want}"`, (w) => document.getElementById("sockstatus").textContent === w, want, {
      timeoutMs,
      describe,
    });

  await page.goto(args.url);
  await socketStatus("ok", 10000);
  log("connected, socket status ok");

  // Redis frozen: the page says so, and a message sent now is refused by the gateway.
  await driver.ask("stop-redis");
  log("redis-server stopped (SIGSTOP)");
  await socketStatus("degraded", 20000);
  if (await page.isHidden("#banner")) throw new Error("no banner while the socket says degraded");
  log(`banner: ${await page.textContent("#banner")}`);

  const text = "What time is it?";
  await page.click("#text");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
  const id = await page.evaluate(() => document.querySelector(".turn:last-child")?.dataset.messageId);
  if (!id) throw new Error("no bubble for the message");
  await until(
    page,
    "the gateway's redis_unavailable answer",
    () => window.chatFrames.some((f) => f.direction === "in" && f.text.includes('"code":"redis_unavailable"')),
    null,
    { timeoutMs: 20000, describe },
  );
  const pending = await page.evaluate((id) => {
    const b = document.querySelector(`.bubble.user[data-message-id="${id}"]`);
    return { state: b.dataset.state, meta: b.querySelector(".meta").textContent, input: document.getElementById("text").value };
  }, id);
  if (pending.state !== "pending") throw new Error(`the refused message is shown as ${JSON.stringify(pending)}`);
  log(`message ${id} kept: ${pending.meta}`);
  await page.screenshot({ path: screenshot.replace(/\.png$/, "-pending.png"), fullPage: true });
  const sentBefore = await page.evaluate(
    (id) => window.chatFrames.filter((f) => f.direction === "out" && f.text.includes(id)).length,
    id,
  );

  // Kept across a reload while Redis is still down (the page keeps its outbox).
  await page.reload();
  await until(
    page,
    "the pending message after a reload",
    (id) => document.querySelector(`.bubble.user[data-message-id="${id}"]`)?.dataset.state === "pending",
    id,
    { describe },
  );
  log("still pending after a reload");

  // Killed: the demo restarts it on the same port and data; the page resends on `ok`.
  const [killed] = await driver.ask("kill-redis");
  log(`redis-server ${killed} killed (SIGKILL)`);
  await socketStatus("ok", 30000);
  await until(page, "the banner cleared", () => document.getElementById("banner").hidden, null, { describe });
  log("socket status ok again, banner cleared");
  await until(
    page,
    "the answer to the kept message",
    (id) => document.querySelector(`.turn[data-message-id="${id}"] .bubble.agent.answer`),
    id,
    { timeoutMs: 30000, describe },
  );
  await until(
    page,
    "the demo's notice of the restart",
    () => [...document.querySelectorAll(".notice")].some((n) => n.textContent.includes("the demo restarted it")),
    null,
    { describe },
  );
  log("answered; the page shows the demo's restart notice");

  // Exactly once: one run for the id although the page sent it more than once. A second
  // run would have started within the wait below (the worker takes jobs at once).
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const seen = await page.evaluate((id) => {
    const out = window.chatFrames
      .filter((f) => f.direction === "out")
      .map((f) => JSON.parse(f.text))
      .filter((f) => f.type === "message");
    const acks = window.chatFrames
      .filter((f) => f.direction === "in")
      .map((f) => JSON.parse(f.text))
      .filter((f) => f.type === "ack");
    const mine = window.ssotEvents.filter((e) => e.data && e.data.message_id === id);
    return {
      sends: out.map((f) => f.id),
      texts: [...new Set(out.map((f) => f.text))],
      ackJobs: [...new Set(acks.filter((a) => a.ref === id).map((a) => a.job))],
      started: mine.filter((e) => e.event === "agent_started").map((e) => e.data.job),
      completed: mine.filter((e) => e.event === "agent_completed").map((e) => e.data.job),
      state: document.querySelector(`.bubble.user[data-message-id="${id}"]`).dataset.state,
    };
  }, id);
  log(`sends ${JSON.stringify(seen.sends)}; ack jobs ${JSON.stringify(seen.ackJobs)}`);
  // Sent before the reload, and again after it once Redis was back: always the same id.
  if (sentBefore < 1 || seen.sends.length < 1 || !seen.sends.every((s) => s === id)) {
    throw new Error(
      `expected the message sent before the reload and again after it with the id ${id}; before: ${sentBefore}, after: ${JSON.stringify(seen.sends)}`,
    );
  }
  if (JSON.stringify(seen.texts) !== JSON.stringify([text])) throw new Error(`resent other text: ${JSON.stringify(seen.texts)}`);
  if (seen.ackJobs.length !== 1) throw new Error(`expected one job acknowledged for ${id}, got ${JSON.stringify(seen.ackJobs)}`);
  if (seen.started.length !== 1 || seen.completed.length !== 1 || seen.started[0] !== seen.ackJobs[0]) {
    throw new Error(`expected exactly one run (job ${seen.ackJobs[0]}), got ${JSON.stringify(seen)}`);
  }
  if (seen.state !== "sent") throw new Error(`the message is still shown as ${seen.state}`);
  log(`ran once, as job ${seen.ackJobs[0]}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot at ${screenshot}`);

  // A reload: the conversation and the notice come back, and nothing is pending.
  await page.reload();
  await socketStatus("ok", 10000);
  await until(
    page,
    "the answer after the reload",
    (id) => document.querySelector(`.turn[data-message-id="${id}"] .bubble.agent.answer`),
    id,
    { describe },
  );
  const after = await page.evaluate(() => ({
    pending: [...document.querySelectorAll('.bubble.user[data-state="pending"]')].length,
    notices: [...document.querySelectorAll(".notice")].map((n) => n.textContent),
    sends: window.chatFrames.filter((f) => f.direction === "out").length,
  }));
  if (after.pending || after.sends) throw new Error(`after the reload something is pending or resent: ${JSON.stringify(after)}`);
  if (!after.notices.some((n) => n.includes("the demo restarted it"))) {
    throw new Error(`the restart notice is not in the history: ${JSON.stringify(after.notices)}`);
  }
  log("the reload shows the conversation, nothing pending");
});
