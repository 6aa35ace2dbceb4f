// socket.io 4 peer of the ssot gateway benchmark: one process, the Redis Streams adapter.
//
// Same semantics as the gateway, the socket.io way:
// - a socket authenticates with a static token in the handshake `auth` ({token, user}) and
//   joins the room `user:<id>`;
// - `POST /v1/users/<id>/events` with `Authorization: Bearer <service key>` and
//   `{"event":..,"data":..}` emits `event` to that room through the adapter (XADD to the
//   adapter's stream; every server, this one included, delivers to its local sockets).
//
// Env: PORT, REDIS_URL, BENCH_TOKEN, SSOT_SERVICE_KEY. Prints `listening <port> pid <pid>`.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-streams-adapter");

const TOKEN = process.env.BENCH_TOKEN;
const SERVICE_KEY = process.env.SSOT_SERVICE_KEY;
const ROUTE = /^\/v1\/users\/([A-Za-z0-9_-]{1,128})\/events$/;

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

async function main() {
  const redis = createClient({ url: process.env.REDIS_URL });
  await redis.connect();

  const httpServer = http.createServer((req, res) => {
    const match = req.method === "POST" && ROUTE.exec(req.url);
    if (!match) return answer(res, 404, { error: "not_found" });
    if (req.headers.authorization !== `Bearer ${SERVICE_KEY}`) {
      return answer(res, 401, { error: "service_key" });
    }
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return answer(res, 400, { error: "invalid_body" });
      }
      if (typeof body.event !== "string" || body.data === undefined) {
        return answer(res, 400, { error: "invalid_body" });
      }
      io.to(`user:${match[1]}`).emit("event", { event: body.event, data: body.data });
      answer(res, 200, { ok: true });
    });
  });
  httpServer.keepAliveTimeout = 60_000;

  const io = new Server(httpServer, {
    adapter: createAdapter(redis),
    serveClient: false,
  });
  io.use((socket, next) => {
    const { token, user } = socket.handshake.auth || {};
    if (token !== TOKEN || typeof user !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(user)) {
      return next(new Error("unauthorized"));
    }
    socket.data.user = user;
    next();
  });
  io.on("connection", (socket) => {
    socket.join(`user:${socket.data.user}`);
  });

  httpServer.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
    console.log(`listening ${httpServer.address().port} pid ${process.pid}`);
  });
  const stop = () => {
    io.close();
    redis.quit().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
