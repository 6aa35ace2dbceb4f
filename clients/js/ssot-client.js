// ssot-client.js — a small browser client for `ssot serve`. No build step, no dependencies.
//
//   const client = new SsotClient("ws://host:8080/v1/ws", {
//     token: "<jwt>",                      // or getToken: async () => "<jwt>"
//     onEvent: (e) => {},                  // {id, event, data}, exactly once, in order
//     onStatus: (redis) => {},             // "ok" | "degraded"
//     onError: (frame) => {},              // {code, message, retry_after_ms?}
//     onState: (state, detail) => {},      // "connecting" | "open" | "closed" | "terminal"
//     onRaw: (direction, text) => {},      // every frame as sent ("out") or received ("in")
//     lastId: "0-0",                       // resume after this id ("0-0": the whole history)
//   });
//   client.connect();
//
// After any close with a reconnect code (see docs/protocol.md) or a dropped connection it
// reconnects with exponential backoff and full jitter, resuming after the last event id it
// delivered, so nothing is lost and nothing shows twice. Terminal codes stop it (4401 asks
// getToken for a fresh token first, when given).
(function (global) {
  "use strict";

  const TERMINAL = new Set([1003, 1008, 1009]);
  const isTerminal = (code) => TERMINAL.has(code) || (code >= 4400 && code <= 4999);

  // Event ids are "<ms>-<seq>"; compare numerically without losing precision.
  function idAfter(a, b) {
    if (!b) return true;
    const [am, as] = a.split("-").map(BigInt);
    const [bm, bs] = b.split("-").map(BigInt);
    return am > bm || (am === bm && as > bs);
  }

  class SsotClient {
    constructor(url, options) {
      this.url = url;
      this.options = Object.assign({ minDelayMs: 250, maxDelayMs: 10000 }, options || {});
      this.lastId = this.options.lastId || null;
      this.attempt = 0;
      this.socket = null;
      this.stopped = false;
      this.timer = null;
    }

    async connect() {
      this.stopped = false;
      clearTimeout(this.timer);
      const token = this.options.getToken ? await this.options.getToken() : this.options.token;
      const url = new URL(this.url, global.location ? global.location.href : undefined);
      if (this.lastId) url.searchParams.set("after", this.lastId);
      this._state("connecting", { attempt: this.attempt });
      const socket = new WebSocket(url.toString(), ["ssot.v1", "bearer." + token]);
      this.socket = socket;
      socket.onopen = () => {
        this.attempt = 0;
        this._state("open", {});
      };
      socket.onmessage = (msg) => {
        if (this.options.onRaw) this.options.onRaw("in", msg.data);
        this._frame(msg.data);
      };
      socket.onclose = (ev) => {
        if (this.socket !== socket) return;
        this.socket = null;
        if (this.stopped) return this._state("closed", { code: ev.code, reason: ev.reason });
        if (ev.code === 4401 && this.options.getToken) return this._retry(ev);
        if (isTerminal(ev.code)) return this._state("terminal", { code: ev.code, reason: ev.reason });
        this._retry(ev);
      };
    }

    send(frame) {
      if (this.socket && this.socket.readyState === 1) {
        const text = JSON.stringify(frame);
        this.socket.send(text);
        if (this.options.onRaw) this.options.onRaw("out", text);
        return true;
      }
      return false;
    }

    close() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.socket) this.socket.close(1000, "client closed");
    }

    _retry(ev) {
      const cap = Math.min(this.options.maxDelayMs, this.options.minDelayMs * 2 ** this.attempt);
      const delay = Math.floor(Math.random() * cap); // full jitter
      this.attempt += 1;
      this._state("closed", { code: ev.code, reason: ev.reason, retryInMs: delay });
      this.timer = setTimeout(() => this.connect(), delay);
    }

    _frame(text) {
      let frame;
      try {
        frame = JSON.parse(text);
      } catch (_) {
        return;
      }
      switch (frame.type) {
        case "event":
          if (!idAfter(frame.id, this.lastId)) return; // already delivered
          this.lastId = frame.id;
          if (this.options.onEvent) this.options.onEvent(frame);
          break;
        case "status":
          if (this.options.onStatus) this.options.onStatus(frame.redis);
          break;
        case "error":
          if (this.options.onError) this.options.onError(frame);
          break;
        default:
          if (this.options.onFrame) this.options.onFrame(frame);
      }
    }

    _state(state, detail) {
      if (this.options.onState) this.options.onState(state, detail);
    }
  }

  global.SsotClient = SsotClient;
})(typeof window !== "undefined" ? window : globalThis);
