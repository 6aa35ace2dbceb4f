// The `ssot demo` chat page in a real headless Chromium: type a message, watch the agent's
// steps stream in and the answer arrive as a bubble, look at the raw frames, reload and find
// the conversation again. Run by crates/ssot-cli/tests/cli/browser.rs, which starts the demo.
//
//   node chat_demo.mjs --url 'http://127.0.0.1:<port>/demo#token=<jwt>' \
//        --screenshot target/browser-artifacts/chat_demo.png [--chromium /usr/bin/chromium]
//
// Needs no driver requests: the demo's own worker answers.

import { describeChat, openPage, parseArgs, prepareScreenshot, run, until } from "./lib.mjs";

const args = parseArgs(process.argv.slice(2), ["url", "screenshot"]);
const chromiumPath = args.chromium || "/usr/bin/chromium";
const describe = describeChat;

// The turn of one message as the page shows it.
const turnOf = (page, text) =>
  page.evaluate((text) => {
    const turns = [...document.querySelectorAll(".turn")].filter(
      (t) => t.querySelector(".bubble.user .text")?.textContent === text,
    );
    return turns.map((t) => ({
      id: t.dataset.messageId,
      userState: t.querySelector(".bubble.user")?.dataset.state,
      steps: [...t.querySelectorAll(".step")].map((s) => s.dataset.kind),
      answers: [...t.querySelectorAll(".bubble.agent")].map((b) => b.textContent),
    }));
  }, text);

await run("chat_demo", async ({ log, state }) => {
  const screenshot = await prepareScreenshot(args.screenshot);
  const page = await openPage({ name: "chat_demo", chromiumPath, screenshot, state, log });

  log("opening the demo's URL");
  await page.goto(args.url);
  await until(page, 'socket status "ok"', () => document.getElementById("sockstatus").textContent === "ok", null, {
    describe,
  });
  if (!(await page.isHidden("#banner"))) throw new Error("a banner shows while Redis is ok");
  if (!(await page.isHidden("#raw"))) throw new Error("the raw frames show before their toggle is pressed");
  log("connected, socket status ok");

  // As a person would: click the box, type, press Enter.
  const text = "12 * (3 + 4)";
  await page.click("#text");
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
  const left = await page.evaluate(() => document.getElementById("text").value);
  if (left !== "") throw new Error(`the message box still holds ${JSON.stringify(left)} after Enter`);
  log(`sent ${JSON.stringify(text)}`);

  // Streaming: a moment where the tool call is shown and the answer is not there yet.
  await until(
    page,
    "the tool call shown before the answer",
    (text) => {
      const turn = [...document.querySelectorAll(".turn")].find(
        (t) => t.querySelector(".bubble.user .text")?.textContent === text,
      );
      return turn && turn.querySelector('.step[data-kind="tool_executing"]') && !turn.querySelector(".bubble.agent");
    },
    text,
    { timeoutMs: 20000, describe },
  );
  log("the tool call streamed in before the answer");
  await until(
    page,
    "the answer bubble",
    () => document.querySelector(".bubble.agent.answer"),
    null,
    { timeoutMs: 30000, describe },
  );
  const [turn, ...others] = await turnOf(page, text);
  if (!turn || others.length) throw new Error(`expected one turn for the message, got ${JSON.stringify([turn, ...others])}`);
  const steps = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_thinking"];
  if (JSON.stringify(turn.steps) !== JSON.stringify(steps)) {
    throw new Error(`expected the steps ${JSON.stringify(steps)}, the page shows ${JSON.stringify(turn.steps)}`);
  }
  if (JSON.stringify(turn.answers) !== JSON.stringify(["That makes 84."])) {
    throw new Error(`expected one answer bubble "That makes 84.", got ${JSON.stringify(turn.answers)}`);
  }
  if (turn.userState !== "sent") throw new Error(`the message is shown as ${turn.userState}, not sent`);
  log(`steps ${turn.steps.join(" → ")}; answer ${JSON.stringify(turn.answers[0])}`);
  const events = await page.evaluate(() => window.ssotEvents.map((e) => e.id));
  if (new Set(events).size !== events.length) throw new Error(`an event shows twice: ${JSON.stringify(events)}`);

  // The raw frames, for developers, behind their toggle: both directions.
  await page.click("#raw-toggle");
  await until(page, "the raw frames shown", () => !document.getElementById("raw").hidden, null, { describe });
  const raw = await page.evaluate(() => [...document.querySelectorAll("#raw .frame")].map((f) => f.textContent));
  const sentFrame = raw.find((f) => f.startsWith("→ ") && f.includes('"type":"message"') && f.includes(turn.id));
  const ackFrame = raw.find((f) => f.startsWith("← ") && f.includes('"type":"ack"') && f.includes(turn.id));
  if (!sentFrame || !ackFrame) throw new Error(`the raw frames lack the message or its ack: ${JSON.stringify(raw)}`);
  log(`raw frames: ${raw.length}, e.g. ${sentFrame}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  log(`screenshot at ${screenshot}`);
  await page.click("#raw-toggle");
  if (!(await page.isHidden("#raw"))) throw new Error("the raw frames stay after the toggle is pressed again");

  // A reload: the conversation comes back from the event log (a resume from its start).
  await page.reload();
  await until(page, 'socket status "ok" after the reload', () => document.getElementById("sockstatus").textContent === "ok", null, {
    describe,
  });
  await until(page, "the answer bubble after the reload", () => document.querySelector(".bubble.agent.answer"), null, {
    describe,
  });
  const [again, ...more] = await turnOf(page, text);
  if (!again || more.length) throw new Error(`after the reload expected one turn, got ${JSON.stringify([again, ...more])}`);
  if (JSON.stringify({ ...again, userState: undefined }) !== JSON.stringify({ ...turn, userState: undefined })) {
    throw new Error(`after the reload the turn is ${JSON.stringify(again)}, before it was ${JSON.stringify(turn)}`);
  }
  const replayed = await page.evaluate(() => window.ssotEvents.map((e) => e.id));
  if (JSON.stringify(replayed) !== JSON.stringify(events)) {
    throw new Error(`after the reload the events are ${JSON.stringify(replayed)}, before ${JSON.stringify(events)}`);
  }
  log("the reload shows the same conversation");
});
