"""The soak of issue 12, driven by bench/soak/run.sh.

One redis-server (AOF), one `ssot serve`, one `ssot worker`, PROCS client processes
(`soak_clients`) holding SOCKETS sockets in all, a steady publish and chat load on the first
HOT users, and a Redis SIGKILL + restart on the same port every RESTART_EVERY seconds, for
DURATION seconds. Every 10 s one JSON line: RSS, open fds and threads of the gateway and the
worker, the gateway's open connections, and Redis memory (a server of its own: every key in
it is the project's). At the end: the slope of each series over the last half of the run,
against the noise around it.
"""
import json, os, signal, socket, subprocess, sys, tempfile, time, urllib.request

env = os.environ
DURATION = int(env.get("DURATION", 3600))
RESTART_EVERY = int(env.get("RESTART_EVERY", 300))
SOCKETS = int(env.get("SOCKETS", 10000))
PROCS = int(env.get("PROCS", 4))
HOT = int(env.get("HOT", 500))
PUBLISH_PER_SEC = float(env.get("PUBLISH_PER_SEC", 40))
CHAT_PER_SEC = float(env.get("CHAT_PER_SEC", 4))
BIN = env["BIN"]
OUT = env["OUT"]
SECRET = "soak-secret-0123456789abcdef0123456"
KEY = "soak-service-key-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


work = tempfile.mkdtemp(prefix="ssot-soak-")
rport, gport = free_port(), free_port()
clean = {"PATH": env["PATH"]}


def start_redis():
    p = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--dir", work, "--logfile", f"{work}/redis.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(rport), "ping"], capture_output=True).stdout.strip() == b"PONG":
            return p
        time.sleep(0.05)
    raise SystemExit("redis-server did not start")


with open(f"{work}/ssot.toml", "w") as f:
    # Retention short enough to reach a steady state within the first half: a stream keeps
    # about 100 events, and events (and their once-markers) live 10 minutes.
    f.write("""
[redis]
app = "soak"
[gateway]
max-connections = 19500
[events]
max-len = 100
max-age-secs = 600
[worker]
agent = "demo"
demo-step-ms = 20
concurrency = 16
""")
redis = start_redis()
ssot_env = dict(clean, SSOT_JWT_SECRET=SECRET, SSOT_SERVICE_KEY=KEY, SSOT_LOG="warn",
                MALLOC_MMAP_THRESHOLD_="32768")
common = [f"{BIN}/ssot", "--config", f"{work}/ssot.toml"]
gw = subprocess.Popen(common + ["serve", "--listen", f"127.0.0.1:{gport}", "--redis", f"redis://127.0.0.1:{rport}"],
                      env=ssot_env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/gateway.log", "w"), cwd=work)
wk = subprocess.Popen(common + ["worker", "--redis", f"redis://127.0.0.1:{rport}"],
                      env=ssot_env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/worker.log", "w"), cwd=work)
time.sleep(1)
users_per_proc = HOT // PROCS
all_users = SOCKETS // 2  # two sockets per user
clients = []
for i in range(PROCS):
    # Each process holds its share of the users; the hot ones (first users) get the load.
    first = i * (all_users // PROCS)
    clients.append(subprocess.Popen(
        [f"{BIN}/soak_clients", "--gateway", f"127.0.0.1:{gport}", "--secret", SECRET,
         "--service-key", KEY, "--users", str(all_users // PROCS), "--first-user", str(first),
         "--sockets", "2", "--publish-per-sec", str(PUBLISH_PER_SEC / PROCS),
         "--chat-per-sec", str(CHAT_PER_SEC / PROCS), "--seconds", str(DURATION)],
        stdout=open(f"{OUT}.clients{i}.jsonl", "w"), stderr=subprocess.STDOUT, env=clean))


def proc(pid):
    try:
        status = open(f"/proc/{pid}/status").read()
        field = lambda k: int(next(l.split()[1] for l in status.splitlines() if l.startswith(k + ":")))
        return {"rss_kb": field("VmRSS"), "threads": field("Threads"), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, StopIteration):
        return None


def redis_memory():
    out = subprocess.run(["redis-cli", "-p", str(rport), "info", "memory"], capture_output=True, text=True, timeout=5).stdout
    info = dict(l.split(":", 1) for l in out.splitlines() if ":" in l)
    keys = subprocess.run(["redis-cli", "-p", str(rport), "dbsize"], capture_output=True, text=True, timeout=5).stdout.strip()
    return {"used": int(info.get("used_memory", 0)), "dataset": int(info.get("used_memory_dataset", 0)),
            "keys": int(keys or 0)}


def connections():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{gport}/metrics", timeout=5).read().decode()
        return int(float(next(l.split()[-1] for l in text.splitlines() if l.startswith("ssot_gateway_connections"))))
    except Exception:
        return None


start = time.time()
next_restart = start + RESTART_EVERY
samples = []
try:
    with open(OUT, "w") as out:
        while time.time() - start < DURATION:
            if time.time() >= next_restart:
                redis.send_signal(signal.SIGKILL)
                redis.wait()
                redis = start_redis()
                next_restart += RESTART_EVERY
                print(json.dumps({"t": round(time.time() - start), "redis_restart": True}), file=out, flush=True)
            try:
                rmem = redis_memory()
            except Exception:
                rmem = None
            sample = {"t": round(time.time() - start), "gateway": proc(gw.pid), "worker": proc(wk.pid),
                      "connections": connections(), "redis": rmem, "load": os.getloadavg()[0]}
            samples.append(sample)
            print(json.dumps(sample), file=out, flush=True)
            time.sleep(10 - (time.time() - start) % 10)
finally:
    for c in clients:
        c.wait(timeout=60) if c.poll() is None and time.time() - start >= DURATION else c.kill()
    for p in (gw, wk, redis):
        p.kill()

# Slopes over the last half (the first half reaches the steady state).
half = [s for s in samples if s["t"] >= DURATION / 2]
series = {
    "gateway rss_kb": lambda s: s["gateway"] and s["gateway"]["rss_kb"],
    "gateway fds": lambda s: s["gateway"] and s["gateway"]["fds"],
    "gateway threads": lambda s: s["gateway"] and s["gateway"]["threads"],
    "gateway connections": lambda s: s["connections"],
    "worker rss_kb": lambda s: s["worker"] and s["worker"]["rss_kb"],
    "worker fds": lambda s: s["worker"] and s["worker"]["fds"],
    "worker threads": lambda s: s["worker"] and s["worker"]["threads"],
    "redis used bytes": lambda s: s["redis"] and s["redis"]["used"],
    "redis keys": lambda s: s["redis"] and s["redis"]["keys"],
}
print(f"| series (last {DURATION // 2 // 60} min) | first | last | mean | slope per 30 min | noise (2 sd) | flat |")
print("|---|---:|---:|---:|---:|---:|---|")
ok = True
for name, get in series.items():
    pts = [(s["t"], get(s)) for s in half if get(s) is not None]
    if len(pts) < 3:
        print(f"| {name} | - | - | - | - | - | no data |")
        ok = False
        continue
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    var_t = sum((t - mt) ** 2 for t, _ in pts)
    slope = sum((t - mt) * (v - mv) for t, v in pts) / var_t if var_t else 0.0
    resid = [v - (mv + slope * (t - mt)) for t, v in pts]
    sd = (sum(r * r for r in resid) / max(n - 2, 1)) ** 0.5
    drift = slope * 1800
    # Flat: the drift over 30 minutes is within the noise, or under 2 % of the mean.
    flat = abs(drift) <= max(2 * sd, 0.02 * abs(mv))
    ok &= flat
    print(f"| {name} | {pts[0][1]} | {pts[-1][1]} | {mv:.0f} | {drift:+.0f} | {2 * sd:.0f} | {'yes' if flat else 'NO'} |")
print("PASS" if ok else "FAIL: a series is not flat")
sys.exit(0 if ok else 1)
