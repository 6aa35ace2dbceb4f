"""Drives the `ssot check` benchmark: corpus set-up, timed cold runs, findings compared.

Cold means no tool-level cache: `ruff --no-cache`, a fresh semgrep process with no
.semgrep cache, and `ssot check`, which has none. Every tool reads the same files, and
one untimed pass of each warms the OS page cache equally. The median of --runs runs is
reported beside every run's time; a run that exits with anything but 0 or 1 stops the
benchmark. Files walked (every file of the language in the tree) and files parsed (walked
minus those the tool reported unparsable) are both reported; files/s is over files parsed.
"""
import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Python projects: three large code bases, redis-py itself, and projects that use Redis.
PYTHON_PACKAGES = [
    "django", "celery", "redis", "kombu", "rq", "django-redis", "channels-redis", "fakeredis",
    "arq", "dramatiq", "huey", "limits", "flask-caching",
]

# Rust: a dependency tree around the Redis client crates, vendored with cargo.
RUST_MANIFEST = """[package]
name = "ssot-bench-rust-corpus"
version = "0.0.0"
edition = "2021"
publish = false

# Its own workspace: it sits below the redis-ssot workspace but is not part of it.
[workspace]

[dependencies]
redis = { version = "*", features = ["tokio-comp", "cluster-async", "connection-manager", "sentinel", "json"] }
deadpool-redis = "*"
bb8-redis = "*"
fred = "*"
tokio = { version = "*", features = ["full"] }
axum = "*"
clap = { version = "*", features = ["derive"] }
serde_json = "*"
regex = "*"
syn = { version = "*", features = ["full"] }
"""


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def corpus(venv: Path) -> Path:
    base = venv / "corpus"
    py = base / "python"
    if not py.exists():
        sdists = venv / "sdists"
        sh([str(venv / "bin/pip"), "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(sdists), *PYTHON_PACKAGES])
        tmp = base / "python.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for archive in sorted(sdists.iterdir()):
            if archive.name.endswith(".tar.gz"):
                with tarfile.open(archive) as t:
                    t.extractall(tmp, filter="data")
            elif archive.suffix == ".zip":
                zipfile.ZipFile(archive).extractall(tmp)
        tmp.rename(py)
    rs = base / "rust"
    if not rs.exists():
        fetch = venv / "rust-fetch"
        (fetch / "src").mkdir(parents=True, exist_ok=True)
        (fetch / "Cargo.toml").write_text(RUST_MANIFEST)
        (fetch / "src/lib.rs").write_text("")
        sh(["cargo", "vendor", "-q", "--versioned-dirs", str(rs)], cwd=fetch, stdout=subprocess.DEVNULL)
    # Its own git root, so the redis-ssot .gitignore (which ignores .venv) does not hide
    # the corpus from semgrep, ruff or ssot check; ssot check finds its config here.
    if not (base / ".git").exists():
        sh(["git", "init", "-q", str(base)])
    shutil.copy(HERE / "ssot.toml", base / "ssot.toml")
    (base / ".semgrepignore").write_text("# scan everything (semgrep's default ignores tests/ and vendor/)\n")
    return base


def count_files(tree: Path, suffix: str) -> tuple[int, int]:
    files = [p for p in tree.rglob(f"*{suffix}") if p.is_file()]
    return len(files), sum(sum(1 for _ in open(p, "rb")) for p in files)


# Exit statuses that mean "ran to the end": 0 clean, 1 findings (ssot check, ruff and
# semgrep alike). Anything else is a failed run, and a failed run's time is no result.
FINISHED = (0, 1)


def timed(cmd, cwd, runs, warm_up=True):
    """Median wall time of `runs` runs, every run's time, and the last run's standard output.
    Stops the benchmark if any timed run did not finish (its exit status says so)."""
    if warm_up:
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # page cache
    times, out = [], ""
    for run in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in FINISHED:
            sys.exit(f"run {run + 1} of {cmd[0]} exited {done.returncode}:\n{done.stderr[-2000:]}")
        out = done.stdout
    return statistics.median(times), times, out


def parsed_files(name, cmd, cwd, walked):
    """Files the tool actually parsed: those it walked minus those it reported unparsable."""
    if name.startswith("ssot check"):
        doc = json.loads(subprocess.run(cmd[:2] + ["--format", "json"] + cmd[2:], cwd=cwd,
                                        capture_output=True, text=True).stdout)
        return walked - len(doc["skipped"])
    if name.startswith("ruff"):
        out = subprocess.run(cmd + ["--output-format", "json"], cwd=cwd, capture_output=True, text=True).stdout
        # A file ruff cannot parse is reported as a diagnostic without a rule code.
        return walked - len({d["filename"] for d in json.loads(out) if d.get("code") is None})
    return None


def ssot_findings(ssot, base, target):
    out = subprocess.run([ssot, "check", "--format", "json", target], cwd=base, capture_output=True, text=True)
    doc = json.loads(out.stdout)
    return {(v["path"], v["start"]["line"]) for v in doc["violations"] if v["code"] == "SSOT001"}, len(doc["skipped"])


def semgrep_findings(stdout):
    doc = json.loads(stdout)
    return {(r["path"], r["start"]["line"]) for r in doc["results"]}, len(doc.get("errors", []))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ssot", required=True)
    ap.add_argument("--venv", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--semgrep-runs", type=int, default=1, help="semgrep takes minutes per run")
    args = ap.parse_args()
    venv = args.venv
    base = corpus(venv)
    ruff = str(venv / "bin/ruff")
    semgrep = [str(venv / "bin/semgrep"), "scan", "--config", str(HERE / "semgrep.yml"), "--metrics=off", "--no-git-ignore",
               "--disable-version-check", "--max-target-bytes=0", "--timeout=0", "-j", "2", "--quiet", "--json"]
    lines = ["| tree | tool | files walked | files parsed | wall (median) | every run | files parsed/s |",
             "|---|---|---:|---:|---:|---|---:|"]
    results = {}
    for tree, suffix in (("python", ".py"), ("rust", ".rs")):
        files, loc = count_files(base / tree, suffix)
        tools = [("ssot check", [args.ssot, "check", tree]), ("ssot check --no-prefilter", [args.ssot, "check", "--no-prefilter", tree])]
        if tree == "python":
            tools.append(("ruff check --no-cache --select TID251", [ruff, "check", "--no-cache", "--config", str(HERE / "ruff.toml"), "--select", "TID251", tree]))
        tools.append(("semgrep (same rules)", semgrep + [tree]))
        for name, cmd in tools:
            is_semgrep = name.startswith("semgrep")
            t, times, out = timed(cmd, base, args.semgrep_runs if is_semgrep else args.runs, warm_up=not is_semgrep)
            results[(tree, name)] = (t, out)
            if is_semgrep:
                doc = json.loads(out)
                failed = {e.get("path") for e in doc.get("errors", []) if e.get("path")}
                parsed = len(set(doc.get("paths", {}).get("scanned", [])) - failed)
            else:
                parsed = parsed_files(name, cmd, base, files)
            every = ", ".join(f"{x:.2f}" for x in times)
            lines.append(f"| {tree} ({loc:,} lines) | {name} | {files} | {parsed} | {t:.2f} s | {every} | {parsed / t:,.0f} |")
            print(lines[-1], flush=True)
    lines.append("")
    for tree in ("python", "rust"):
        ours, skipped = ssot_findings(args.ssot, base, tree)
        theirs, errors = semgrep_findings(results[(tree, "semgrep (same rules)")][1])
        lines.append(f"### {tree}: SSOT001 findings: ssot check {len(ours)}, semgrep {len(theirs)}, both {len(ours & theirs)} "
                     f"(ssot skipped {skipped} unparsable files, semgrep reported {errors} errors)")
        for label, diff in (("only ssot check", sorted(ours - theirs)), ("only semgrep", sorted(theirs - ours))):
            lines.append(f"- {label} ({len(diff)}):")
            lines.extend(f"  - {path}:{line}" for path, line in diff)
        lines.append("")
    # Kept beside the other benchmarks' raw results, named by when the run was taken.
    out_dir = HERE.parent / "results" / "check"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (out_dir / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
