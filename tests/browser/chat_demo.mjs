// The `ssot demo` page in a real headless Chromium: type a message, watch the agent's run
// stream in. Run by crates/ssot-cli/tests/cli/browser.rs, which starts the demo.
//
//   node chat_demo.mjs --url 'http://127.0.0.1:<port>/#token=<jwt>' \
//        --screenshot target/browser-artifacts/chat_demo.png [--chromium /usr/bin/chromium]
//
// Needs no driver requests: the demo's own worker answers.

import { launch, parseArgs, prepareScreenshot, run, until } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2), ["url", "screenshot"]);
const chromiumPath = args.chromium || "/usr/bin/chromium";

const describe = (page) =>
  page.evaluate(() => ({
    state: document.getElementById("state").textContent,
    socketStatus: document.getElementById("sockstatus").textContent,
    events: (window.ssotEvents || []).map((e) => `${e.id} ${e.event}`),
    log: [...document.querySelectorAll("#log div")].slice(-8).map((d) => d.textContent),
  }));

await run("chat_demo", async ({ log, state }) => {
  const screenshot = await prepareScreenshot(args.screenshot);
  const browser = await launch(chromiumPath);
  state.cleanup.push(() => browser.close());
  const page = browser.context.pages()[0] || (await browser.context.newPage());
  state.onFailure.push(async () => {
    const file = screenshot.replace(/\.png$/, "-failure.png");
    await page.screenshot({ path: file, fullPage: true });
    process.stderr.write(`chat_demo: failure screenshot at ${file}\n`);
  });
  page.on("pageerror", (err) => log(`page error: ${err.message}`));

  log("opening the demo's URL");
  await page.goto(args.url);
  await until(page, 'socket status "ok"', () => document.getElementById("sockstatus").textContent === "ok", null, {
    describe,
  });
  log("connected, socket status ok");

  // As a person would: click the box, type, press Enter.
  const text = "What is the weather in Lisbon?";
  await page.click("#text");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
  const sent = await page.evaluate(() => document.getElementById("text").value);
  if (sent !== "") throw new Error(`the message box still holds ${JSON.stringify(sent)} after Enter`);
  log(`sent ${JSON.stringify(text)}`);

  await until(page, "an ack for the message", () => document.getElementById("log").textContent.includes("ack "), null, {
    describe,
  });
  await until(
    page,
    "agent_completed",
    () => (window.ssotEvents || []).some((e) => e.event === "agent_completed"),
    null,
    { timeoutMs: 30000, describe },
  );
  const events = await page.evaluate(() => window.ssotEvents.map((e) => ({ id: e.id, event: e.event, data: e.data })));
  log(`run: ${events.map((e) => e.event).join(" → ")}`);

  // One complete run: agent_started first, agent_completed last, one job, seq 1, 2, 3, …
  const names = events.map((e) => e.event);
  if (names[0] !== "agent_started" || names[names.length - 1] !== "agent_completed") {
    throw new Error(`expected agent_started … agent_completed, got ${JSON.stringify(names)}`);
  }
  if (names.filter((n) => n === "agent_completed").length !== 1) {
    throw new Error(`agent_completed more than once: ${JSON.stringify(names)}`);
  }
  const jobs = new Set(events.map((e) => e.data && e.data.job));
  if (jobs.size !== 1 || jobs.has(undefined)) throw new Error(`expected one job id, got ${JSON.stringify([...jobs])}`);
  const seqs = events.map((e) => e.data.seq);
  if (!seqs.every((s, i) => s === i + 1)) throw new Error(`sequence numbers not 1, 2, 3, …: ${JSON.stringify(seqs)}`);
  const ids = events.map((e) => e.id);
  if (new Set(ids).size !== ids.length) throw new Error(`an event shows twice: ${JSON.stringify(ids)}`);

  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot at ${screenshot}`);
});
