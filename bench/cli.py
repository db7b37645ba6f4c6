"""``python bench/run.py``: invoke migrate against what users would use instead.

See bench/README.md for what is measured and how to read the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import coldstart, fixture, live, report, workloads
from bench.contenders import Contender, ContenderFailed, build, dbmate_binary
from bench.report import Result, Results
from bench.server import ROOT, BenchError, BenchServer
from bench.workloads import Workload

RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = (10, 100, 1000, 10000)
QUICK_SIZES = (10, 100)
CONTENDERS = ("invoke", "engine", "spec", "floor", "floor-tx", "dbmate")


def say(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Time invoke migrate against the spec's compose loop, one psql session "
        "(the floor) and dbmate, on the same PostgreSQL.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="sizes 10 and 100, 2 repeats, one cold start each: under a minute",
    )
    parser.add_argument("--repeats", type=int, help="runs per contender and size (default 5)")
    parser.add_argument(
        "--sizes",
        help="generated set sizes, comma-separated (default 10,100,1000,10000)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"which contenders, comma-separated (default {','.join(CONTENDERS)})",
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real migrations/")
    parser.add_argument(
        "--cold-repeats", type=int, help="cold starts of each kind (default 5; 0 skips them)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=150.0,
        help="seconds a contender may spend at one size (fresh + no-op, all repeats); "
        "extrapolated linearly from the previous size: repeats are reduced to fit, and a "
        "contender whose single run would not fit is skipped, with a note (default 150)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="folder for latest.json and latest.png (quick.* with --quick)",
    )
    parser.add_argument(
        "--live-hold",
        type=float,
        help="live-traffic scenario: seconds the blocker keeps holding contacts after the "
        "migration first asks for it "
        f"(default {live.FULL_HOLD:g}, {live.QUICK_HOLD:g} with --quick)",
    )
    parser.add_argument(
        "--live-repeats",
        type=int,
        help="live-traffic runs per contender (default 3, 1 with --quick; 0 skips them)",
    )
    parser.add_argument(
        "--live-lock-timeouts",
        help="live traffic: also run invoke migrate with these --lock-timeout values, "
        "comma-separated (default "
        f"{','.join(f'{x:g}' for x in live.FULL_LOCK_TIMEOUTS)}; none with --quick)",
    )
    parser.add_argument(
        "--live-only",
        action="store_true",
        help="run only the live-traffic scenario and record it in the existing "
        "latest.json (quick.json with --quick) and its plot, keeping the other results",
    )
    parser.add_argument(
        "--fixture-repeats",
        type=int,
        default=20,
        help="clones vs migrates of migrations/ for the pytest fixture (bench/fixture.py); "
        "0 skips them (default 20)",
    )
    args = parser.parse_args(argv)
    if args.live_hold is None:
        args.live_hold = live.QUICK_HOLD if args.quick else live.FULL_HOLD
    if args.live_repeats is None:
        args.live_repeats = 1 if args.quick else 3
    if args.live_hold <= live.MIGRATE_AFTER:
        parser.error(f"--live-hold: more than {live.MIGRATE_AFTER:g} s")
    timeouts: tuple[float, ...] = () if args.quick else live.FULL_LOCK_TIMEOUTS
    if args.live_lock_timeouts is not None:
        try:
            timeouts = tuple(float(x) for x in args.live_lock_timeouts.split(",") if x.strip())
        except ValueError:
            parser.error(f"--live-lock-timeouts {args.live_lock_timeouts!r}: give seconds")
        if any(x <= 0 for x in timeouts):
            parser.error("--live-lock-timeouts: each value is more than 0")
    args.live_contenders = live.CONTENDERS + tuple(live.lock_timeout_contender(x) for x in timeouts)
    if args.live_only and args.live_repeats < 1:
        parser.error("--live-only needs --live-repeats of at least 1")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.cold_repeats is None:
        args.cold_repeats = 1 if args.quick else 5
    sizes: tuple[int, ...] = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.sizes:
        try:
            sizes = tuple(sorted({int(s) for s in args.sizes.split(",") if s.strip()}))
        except ValueError:
            parser.error(f"--sizes {args.sizes!r}: give numbers such as 10,100,1000")
        if any(s < 1 for s in sizes):
            parser.error("--sizes: each size is at least 1")
    args.sizes = sizes
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CONTENDERS))
    if unknown or not chosen:
        parser.error(f"--contenders: unknown {unknown}; choose from {', '.join(CONTENDERS)}")
    args.contenders = [c for c in CONTENDERS if c in chosen]
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


@dataclass
class Plan:
    repeats: int
    note: str = ""
    skip: bool = False


def plan_size(
    workload: Workload,
    key: str,
    previous: tuple[Workload, Results] | None,
    repeats: int,
    budget: float,
) -> Plan:
    """Repeats for ``key`` at ``workload``, extrapolated from the previous generated size."""
    if previous is None:
        return Plan(repeats)
    before, results = previous
    pair = [results.median(before.name, mode, key) for mode in report.MODES]
    if any(p is None for p in pair):
        status = results.get(before.name, "fresh", key)
        if status is not None and status.status != "ok":
            return Plan(0, f"{status.status} at {before.files} files", skip=True)
        return Plan(repeats)
    estimate = sum(p for p in pair if p is not None) * workload.files / before.files
    if estimate > budget:
        return Plan(
            0,
            f"skipped: fresh + no-op extrapolated from {before.files} files to "
            f"{estimate:.0f}s > budget {budget:.0f}s",
            skip=True,
        )
    fits = max(1, int(budget // estimate)) if estimate > 0 else repeats
    if fits < repeats:
        return Plan(fits, f"{fits} of {repeats} repeats: budget {budget:.0f}s")
    return Plan(repeats)


def measure(
    server: BenchServer,
    workload: Workload,
    contenders: list[Contender],
    plans: dict[str, Plan],
    results: Results,
) -> None:
    """Fresh apply then no-op re-run, on a new database each repeat, contenders interleaved."""
    rows = {
        (c.key, mode): Result(workload.name, workload.files, mode, c.key)
        for c in contenders
        for mode in report.MODES
    }
    results.items.extend(rows.values())
    for c in contenders:
        plan = plans[c.key]
        if plan.skip:
            for mode in report.MODES:
                rows[c.key, mode].status = "skipped"
                rows[c.key, mode].note = plan.note
            say(f"  {c.key}: {plan.note}")
        elif plan.note:
            for mode in report.MODES:
                rows[c.key, mode].note = plan.note
    most = max((p.repeats for p in plans.values()), default=0)
    for rep in range(most):
        order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
        for c in order:
            plan = plans[c.key]
            if plan.skip or rep >= plan.repeats or rows[c.key, "fresh"].status == "failed":
                continue
            dbname = f"bench_{c.key}_{workload.files}_{rep}"
            server.create_database(dbname)
            try:
                fresh = c.apply(workload, dbname)
                rows_applied = server.scalar("SELECT count(*) FROM schema_migrations", dbname)
                if rows_applied != workload.files:
                    raise ContenderFailed(
                        f"{rows_applied} rows in schema_migrations after it, not {workload.files}"
                    )
                noop = c.apply(workload, dbname)
            except ContenderFailed as exc:
                for mode in report.MODES:
                    rows[c.key, mode].status = "failed"
                    rows[c.key, mode].note = f"failed: {exc}"[:300]
                say(f"  {workload.name} {c.key}: FAILED {exc}")
                continue
            finally:
                server.drop_database(dbname)
            rows[c.key, "fresh"].runs.append(fresh)
            rows[c.key, "noop"].runs.append(noop)
            say(
                f"  {workload.name:<9} {rep + 1}/{plan.repeats} {c.key:<7}"
                f" fresh {fresh:8.3f}s  no-op {noop:8.3f}s"
            )


def _version(args: list[str]) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else "?"
    )


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def machine() -> dict[str, Any]:
    cpu = ""
    mem_kb = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
    }


def versions(server: BenchServer) -> dict[str, str]:
    from alumdb import environment
    from tools import provision

    return {
        "alumdb": _package("alumdb"),
        "python": platform.python_version(),
        "invoke": _package("invoke"),
        "psycopg": _package("psycopg"),
        "libpq": str(__import__("psycopg").pq.version()),
        "docker_sdk": _package("docker"),
        "matplotlib": _package("matplotlib"),
        "dbmate": _version([dbmate_binary(), "--version"]),
        "docker_engine": _version(["docker", "version", "--format", "{{.Server.Version}}"]),
        "compose": _version([*environment.compose_command(), "version", "--short"]),
        "postgres_image": provision.configured_image(),
        "postgres": str(server.scalar("SHOW server_version")),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_live(server: BenchServer, base: Path, args: argparse.Namespace) -> dict[str, Any]:
    say(
        f"live traffic: {live.THREADS} threads on contacts, a blocker holding it "
        f"{args.live_hold:g} s, {args.live_repeats} run(s) per contender"
    )
    return live.measure(
        server,
        base,
        hold=args.live_hold,
        repeats=args.live_repeats,
        contenders=args.live_contenders,
        say=say,
    )


def _live_alone(
    server: BenchServer, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, str]]:
    """The live-traffic scenario on a server of its own (removed at the end, always);
    its results and the versions."""
    with tempfile.TemporaryDirectory(prefix="alumdb-bench-") as tmp:
        say(f"starting PostgreSQL (compose project {server.tag}, port {server.port})")
        try:
            server.start(lock_table=False)
            return run_live(server, Path(tmp), args), versions(server)
        finally:
            say(f"removing compose project {server.tag} (containers, network, volume)")
            server.down()


def live_only(args: argparse.Namespace) -> int:
    """The live-traffic scenario alone, merged into the last full (or quick) results."""
    stem = "quick" if args.quick else "latest"
    json_path = args.output / f"{stem}.json"
    if not json_path.is_file():
        say(f"error: {json_path} does not exist; run the whole bench first")
        return 1
    document = json.loads(json_path.read_text(encoding="utf-8"))
    load_start = loadavg()
    server = BenchServer.create()
    try:
        found, info = _live_alone(server, args)
    except BenchError as exc:
        say(f"error: {exc}")
        return 1
    found["run"] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "versions": info,
        "options": {
            "hold": args.live_hold,
            "repeats": args.live_repeats,
            "contenders": list(args.live_contenders),
            "live_only": True,
        },
    }
    checks = report.live_targets(found)
    document["live_traffic"] = found
    document["targets"] = [
        t for t in document.get("targets", []) if not t["name"].startswith("live traffic")
    ] + [t.to_json() for t in checks]
    say("")
    say(live.table(found))
    for check in checks:
        say(check.line())
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    workloads_done = [(w["name"], w["files"]) for w in document.get("workloads", [])]
    generated = [(n, f) for n, f in workloads_done if n.startswith("gen-")]
    real = next(((n, f) for n, f in workloads_done if n == "real"), None)
    png_path = args.output / f"{stem}.png"
    loads = document["machine"]
    title = (
        f"invoke migrate vs alternatives, PostgreSQL {document['versions'].get('postgres')}, "
        f"{loads.get('cpus')} CPUs, load {loads['loadavg_start'][0]:.1f}-"
        f"{loads['loadavg_end'][0]:.1f}"
    )
    labels = {k: c.label for k, c in build(server).items()}
    results = Results.from_json(document.get("results", []))
    report.plot(results, labels, generated, real=real, path=png_path, title=title, live=found)
    say(f"wrote {json_path} and {png_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.live_only:
        return live_only(args)
    started = time.perf_counter()
    load_start = loadavg()
    say(f"alumdb bench: load average {load_start} on {os.cpu_count()} CPUs")
    server = BenchServer.create()
    all_contenders = build(server)
    contenders = [all_contenders[k] for k in args.contenders]
    labels = {k: c.label for k, c in all_contenders.items()}
    results = Results()
    cold: dict[str, Any] | None = None
    live_found: dict[str, Any] | None = None
    fixture_result: dict[str, Any] | None = None
    load_points: list[dict[str, Any]] = [{"at": "start", "loadavg": load_start}]
    info: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="alumdb-bench-") as tmp:
        base = Path(tmp)
        real = None if args.no_real else workloads.real(base)
        if real is None and not args.no_real:
            say("migrations/ holds no migration yet: the real workload is skipped")
        generated = [workloads.generate(n, base) for n in args.sizes]
        say(
            "workloads: "
            + ", ".join(
                f"{w.name} ({w.files} files)" for w in [*([real] if real else []), *generated]
            )
        )
        try:
            say(f"starting PostgreSQL (compose project {server.tag}, port {server.port})")
            server.start(lock_table=max(args.sizes, default=0) > server.DEFAULT_LOCK_FILES)
            info.update(versions(server))
            previous: tuple[Workload, Results] | None = None
            for workload in [*([real] if real else []), *generated]:
                say(f"{workload.name}: {workload.files} files")
                plans = {
                    c.key: plan_size(
                        workload,
                        c.key,
                        previous if workload.generated else None,
                        # --quick: the spec loop (a container and a psql per file, by far
                        # the slowest) runs once per size, so the run stays under a minute.
                        1 if args.quick and c.key == "spec" else args.repeats,
                        args.budget,
                    )
                    for c in contenders
                }
                measure(server, workload, contenders, plans, results)
                if workload.generated:
                    previous = (workload, results)
                load_points.append({"at": workload.name, "loadavg": loadavg()})
            if args.cold_repeats > 0:
                cold_workload = real or next((w for w in generated if w.files <= 20), None)
                if cold_workload is None:
                    say("cold start skipped: no workload of at most 20 files")
                else:
                    say(f"cold start: {cold_workload.name} ({cold_workload.files} files)")
                    times = coldstart.measure(server, cold_workload, args.cold_repeats, say)
                    cold = summarise_cold(times, results, cold_workload)
                    load_points.append({"at": "cold start", "loadavg": loadavg()})
            if args.live_repeats > 0:
                live_found = run_live(server, base, args)
                load_points.append({"at": "live traffic", "loadavg": loadavg()})
            if args.fixture_repeats > 0 and real is not None:
                say(f"fixture: {args.fixture_repeats} clones vs migrates of migrations/")
                fixture_result = fixture.measure(
                    server, ROOT / "migrations", args.fixture_repeats, 5
                )
        except BenchError as exc:
            say(f"error: {exc}")
            return 1
        finally:
            say(f"removing compose project {server.tag} (containers, network, volume)")
            server.down()

    workload_list = [(w.name, w.files) for w in [*([real] if real else []), *generated]]
    generated_list = [(w.name, w.files) for w in generated]
    checks = report.targets(results, generated_list, cold) + report.live_targets(live_found)
    say("")
    say(report.table(results, labels, workload_list))
    if cold is not None:
        say("")
        say(cold_table(cold))
    if live_found is not None:
        say("")
        say(live.table(live_found))
    say("")
    for check in checks:
        say(check.line())
    for line in fixture.lines(fixture_result) if fixture_result else []:
        say(line)
    load_end = loadavg()
    say("")
    say(
        f"load average: {load_start} at the start, {load_end} at the end"
        f" ({os.cpu_count()} CPUs; other work on the machine inflates the times)"
    )

    args.output.mkdir(parents=True, exist_ok=True)
    document = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "machine": {**machine(), "loadavg_start": load_start, "loadavg_end": load_end},
        "loadavg": [*load_points, {"at": "end", "loadavg": load_end}],
        "versions": info,
        "options": {
            "quick": args.quick,
            "repeats": args.repeats,
            "sizes": list(args.sizes),
            "contenders": args.contenders,
            "cold_repeats": args.cold_repeats,
            "budget_seconds": args.budget,
            "live_hold": args.live_hold,
            "live_repeats": args.live_repeats,
        },
        "contenders": {k: all_contenders[k].description for k in args.contenders},
        "workloads": [{"name": n, "files": f} for n, f in workload_list],
        "results": [r.to_json(results.floor(r.workload, r.mode)) for r in results.items],
        "cold_start": cold,
        "live_traffic": live_found,
        "fixture": fixture.section({fixture.VOLUME: fixture_result}) if fixture_result else None,
        "targets": [t.to_json() for t in checks],
        "seconds": round(time.perf_counter() - started, 1),
    }
    # A --quick run must not overwrite the committed results of the last full run.
    stem = "quick" if args.quick else "latest"
    json_path = args.output / f"{stem}.json"
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    png_path = args.output / f"{stem}.png"
    title = (
        f"invoke migrate vs alternatives, PostgreSQL {info['postgres']}, "
        f"{os.cpu_count()} CPUs, load {load_start[0]:.1f}-{load_end[0]:.1f}"
    )
    real_point = (real.name, real.files) if real else None
    report.plot(
        results, labels, generated_list, real=real_point, path=png_path, title=title,
        live=live_found,
    )  # fmt: skip
    say(f"wrote {json_path} and {png_path}")
    say(f"total {time.perf_counter() - started:.0f}s")
    return 0


def summarise_cold(
    times: dict[str, list[float]], results: Results, workload: Workload
) -> dict[str, Any]:
    """Medians of the cold starts and the overheads beyond ready + apply.

    ``apply`` is the engine's time on the just-started server (measured right after
    ``ready``), the apply a cold start really pays; ``apply_warm`` is the fresh-apply
    median of the warm runs, for reference.
    """
    import statistics

    med = {kind: statistics.median(v) for kind, v in times.items() if v}
    floor = results.floor(workload.name, "fresh")
    warm = results.median(workload.name, "fresh", "engine")
    overhead = med["invoke"] - med["ready"] - med["apply"]
    spec_overhead = med["spec"] - med["ready"] - floor if floor is not None else None
    return {
        "workload": workload.name,
        "files": workload.files,
        "runs": {k: [round(x, 4) for x in v] for k, v in times.items()},
        "ready": round(med["ready"], 4),
        "apply": round(med["apply"], 4),
        "apply_warm": round(warm, 4) if warm is not None else None,
        "invoke": round(med["invoke"], 4),
        "spec": round(med["spec"], 4),
        "floor": round(floor, 4) if floor is not None else None,
        "overhead": round(overhead, 4),
        "spec_overhead": round(spec_overhead, 4) if spec_overhead is not None else None,
    }


def cold_table(cold: dict[str, Any]) -> str:
    runs = cold["runs"]
    lines = [
        f"cold start ({cold['workload']}, {cold['files']} files), from no containers:",
        f"{'':<34} {'median s':>9} {'min':>8} {'max':>8} {'runs':>4}",
    ]
    names = {
        "ready": "container ready (up -d + connect)",
        "apply": "then engine apply, in-process",
        "invoke": "invoke migrate (compose target)",
        "spec": "spec: up postgres -d + run --rm",
    }
    for kind in coldstart.MEASURES:
        values = runs[kind]
        lines.append(
            f"{names[kind]:<34} {cold[kind]:>9.3f} {min(values):>8.3f} {max(values):>8.3f}"
            f" {len(values):>4}"
        )
    lines.append(
        f"invoke overhead beyond ready + apply: {cold['overhead']:+.3f} s"
        f" (the engine's warm fresh apply: {cold['apply_warm'] or 0:.3f} s)"
    )
    if cold["spec_overhead"] is not None:
        lines.append(
            f"spec overhead beyond ready + floor ({cold['floor']:.3f} s): "
            f"{cold['spec_overhead']:+.3f} s"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
