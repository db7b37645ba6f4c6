"""Summaries of the measurements: statistics, the table, the targets, JSON and the plot."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["fresh", "noop"]
MODES: tuple[Mode, ...] = ("fresh", "noop")
MODE_LABEL = {"fresh": "fresh apply", "noop": "no-op re-run"}
Status = Literal["ok", "skipped", "failed"]

# Targets, as the issue states them.
FRESH_VS_FLOOR = 1.2
NOOP_VS_SPEC = 20.0
NOOP_VS_DBMATE = 5.0
COLD_OVERHEAD = 0.5
TARGET_FILES = 1000
LIVE_STALL = 0.25  # the application's worst stall behind invoke migrate (live traffic)
LIVE_LANDED = 1.0  # seconds from the blocker's end until the migration has landed


@dataclass
class Result:
    """Every run of one contender on one workload in one mode."""

    workload: str
    files: int
    mode: Mode
    contender: str
    runs: list[float] = field(default_factory=list)
    status: Status = "ok"
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    def quartiles(self) -> tuple[float, float] | None:
        if len(self.runs) < 2:
            return None
        q1, _, q3 = statistics.quantiles(self.runs, n=4, method="inclusive")
        return q1, q3

    def to_json(self, floor: float | None) -> dict[str, Any]:
        quartiles = self.quartiles()
        median = self.median
        return {
            "workload": self.workload,
            "files": self.files,
            "mode": self.mode,
            "contender": self.contender,
            "status": self.status,
            "note": self.note,
            "runs": [round(r, 4) for r in self.runs],
            "median": round(median, 4) if median is not None else None,
            "min": round(min(self.runs), 4) if self.runs else None,
            "max": round(max(self.runs), 4) if self.runs else None,
            "q1": round(quartiles[0], 4) if quartiles else None,
            "q3": round(quartiles[1], 4) if quartiles else None,
            "ratio_to_floor": round(median / floor, 3) if median and floor else None,
        }


@dataclass
class Results:
    items: list[Result] = field(default_factory=list)

    def get(self, workload: str, mode: Mode, contender: str) -> Result | None:
        for r in self.items:
            if (r.workload, r.mode, r.contender) == (workload, mode, contender):
                return r
        return None

    def median(self, workload: str, mode: Mode, contender: str) -> float | None:
        found = self.get(workload, mode, contender)
        return found.median if found is not None else None

    def floor(self, workload: str, mode: Mode) -> float | None:
        return self.median(workload, mode, "floor")

    @classmethod
    def from_json(cls, items: list[dict[str, Any]]) -> Results:
        """The results a previous run wrote (``results`` of its JSON)."""
        return cls(
            [
                Result(
                    i["workload"],
                    i["files"],
                    i["mode"],
                    i["contender"],
                    list(i["runs"]),
                    i["status"],
                    i["note"],
                )
                for i in items
            ]
        )


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(results: Results, labels: dict[str, str], workloads: list[tuple[str, int]]) -> str:
    """The results as a text table, one block per workload and mode."""
    head = (
        f"{'workload':<10} {'files':>6} {'mode':<12} {'contender':<24} {'median s':>9}"
        f" {'min':>8} {'max':>8} {'IQR':>8} {'x floor':>8} {'runs':>4}"
    )
    lines = [head, "-" * len(head)]
    for name, files in workloads:
        for mode in MODES:
            floor = results.floor(name, mode)
            for r in results.items:
                if (r.workload, r.mode) != (name, mode):
                    continue
                label = labels.get(r.contender, r.contender)
                prefix = f"{name:<10} {files:>6} {MODE_LABEL[mode]:<12} {label:<24}"
                if not r.runs:
                    note = r.note if r.note.startswith(r.status) else f"{r.status}: {r.note}"
                    lines.append(f"{prefix} {note}")
                    continue
                quartiles = r.quartiles()
                iqr = _seconds(quartiles[1] - quartiles[0]) if quartiles else "-"
                median = r.median
                ratio = f"{median / floor:.2f}" if median is not None and floor else "-"
                note = f"  ({r.note})" if r.note else ""
                lines.append(
                    f"{prefix} {_seconds(median):>9} {_seconds(min(r.runs)):>8}"
                    f" {_seconds(max(r.runs)):>8} {iqr:>8} {ratio:>8} {len(r.runs):>4}{note}"
                )
        lines.append("")
    return "\n".join(lines).rstrip()


@dataclass(frozen=True)
class Target:
    name: str
    passed: bool | None  # None: not measured in this run
    detail: str

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "N/A "}[self.passed]
        return f"{verdict} {self.name}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(
    results: Results,
    generated: list[tuple[str, int]],
    cold: dict[str, Any] | None,
) -> list[Target]:
    """The issue's targets, judged on ``invoke migrate`` (the whole command)."""
    out: list[Target] = []
    # At 1,000 files, or the largest generated set below it (a --quick run).
    eligible = [(n, f) for n, f in generated if f <= TARGET_FILES]
    if eligible:
        name, files = max(eligible, key=lambda item: item[1])
        at = f"{files} files" + ("" if files == TARGET_FILES else " (1,000 not run)")
        fresh = results.median(name, "fresh", "invoke")
        floor = results.floor(name, "fresh")
        dbmate = results.median(name, "fresh", "dbmate")
        engine = results.median(name, "fresh", "engine")
        per_file = results.median(name, "fresh", "floor-tx")
        vs_floor = _ratio(fresh, floor)
        passed: bool | None = None
        if vs_floor is not None and dbmate is not None and fresh is not None:
            passed = vs_floor <= FRESH_VS_FLOOR and fresh < dbmate
        out.append(
            Target(
                f"fresh apply, {at}: within {FRESH_VS_FLOOR}x of the floor and faster than dbmate",
                passed,
                f"invoke {_seconds(fresh)} s = {vs_floor or 0:.2f}x floor ({_seconds(floor)} s);"
                f" dbmate {_seconds(dbmate)} s; engine in-process {_seconds(engine)} s"
                f" = {_ratio(engine, floor) or 0:.2f}x floor; one transaction per file costs"
                f" the server alone {_ratio(per_file, floor) or 0:.2f}x floor"
                f" ({_seconds(per_file)} s)",
            )
        )
        noop = results.median(name, "noop", "invoke")
        spec = results.median(name, "noop", "spec")
        dbmate_noop = results.median(name, "noop", "dbmate")
        speedup = _ratio(spec, noop)
        vs_dbmate = _ratio(noop, dbmate_noop)
        passed = None
        if speedup is not None and vs_dbmate is not None:
            passed = speedup >= NOOP_VS_SPEC and vs_dbmate <= NOOP_VS_DBMATE
        out.append(
            Target(
                f"no-op re-run, {at}: >= {NOOP_VS_SPEC:g}x faster than the spec loop and within"
                f" {NOOP_VS_DBMATE:g}x of dbmate",
                passed,
                f"invoke {_seconds(noop)} s; spec loop {_seconds(spec)} s"
                f" ({speedup or 0:.1f}x); dbmate {_seconds(dbmate_noop)} s"
                f" ({vs_dbmate or 0:.2f}x)",
            )
        )
    if cold is not None and cold.get("overhead") is not None:
        overhead = float(cold["overhead"])
        out.append(
            Target(
                f"cold start: <= {COLD_OVERHEAD} s beyond container ready + apply",
                overhead <= COLD_OVERHEAD,
                f"invoke {_seconds(cold['invoke'])} s - ready {_seconds(cold['ready'])} s"
                f" - apply {_seconds(cold['apply'])} s = {overhead:+.3f} s"
                f" (spec's commands: {cold['spec_overhead'] or 0:+.3f} s beyond ready + floor)",
            )
        )
    return out


def live_targets(live: dict[str, Any] | None) -> list[Target]:
    """The live-traffic targets, judged on ``invoke migrate`` with its defaults."""
    if live is None or "invoke" not in live["summary"]:
        return []
    summary = live["summary"]
    mine = summary["invoke"]
    others = "; ".join(
        f"{data['label']} {_seconds(data['max_stall'])} s"
        for key, data in summary.items()
        if key != "invoke"
    )
    stall = mine["max_stall"]
    landed = mine["landed_after_blocker"]
    applied = bool(mine["all_applied"])
    return [
        Target(
            f"live traffic: the application's worst stall under invoke migrate <= {LIVE_STALL} s",
            None if stall is None else applied and stall <= LIVE_STALL,
            f"invoke {_seconds(stall)} s (p99 {_seconds(mine['p99'])} s); {others}",
        ),
        Target(
            f"live traffic: invoke migrate lands within {LIVE_LANDED:g} s of the blocker ending",
            None if landed is None else applied and landed <= LIVE_LANDED,
            f"{_seconds(landed)} s after the blocker's COMMIT (slowest of "
            f"{len([r for r in live['runs'] if r['contender'] == 'invoke'])} runs)",
        ),
    ]


def _plot_live(ax: Any, live: dict[str, Any]) -> None:
    """Worst stall and p99 of the application per contender (log scale), the target line."""
    summary = live["summary"]
    keys = list(summary)
    for offset, (field_name, label) in enumerate((("max_stall", "max"), ("p99", "p99"))):
        values = [summary[k][field_name] or 0.0 for k in keys]
        positions = [i + (offset - 0.5) * 0.4 for i in range(len(keys))]
        ax.barh(positions, values, height=0.4, color=f"C{offset + 3}", label=label)
        for y, value in zip(positions, values, strict=True):
            ax.text(value, y, f" {value:.3f}", va="center", fontsize=7)
    ax.axvline(LIVE_STALL, color="k", linestyle="--", linewidth=1, label=f"target {LIVE_STALL} s")
    ax.set_yticks(range(len(keys)), [summary[k]["label"] for k in keys], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("application query latency during the migration, s")
    scenario = live["scenario"]
    ax.set_title(
        f"live traffic: blocker holds contacts {scenario['blocker_after_ask_seconds']:g}"
        " s after the migration asks",
        fontsize=9,
    )
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7)


def plot(
    results: Results,
    labels: dict[str, str],
    generated: list[tuple[str, int]],
    *,
    real: tuple[str, int] | None,
    path: Path,
    title: str,
    live: dict[str, Any] | None = None,
) -> None:
    """Time against number of files, log-log, one line per contender, per mode; with
    ``live``, a third panel with the live-traffic scenario's stalls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if live is not None else 2
    fig, all_axes = plt.subplots(1, panels, figsize=(6 * panels, 5), sharey=False)
    axes = list(all_axes)[:2]
    if live is not None:
        _plot_live(all_axes[2], live)
    contenders = list(dict.fromkeys(r.contender for r in results.items))
    for ax, mode in zip(axes, MODES, strict=True):
        for index, key in enumerate(contenders):
            color = f"C{index}"
            xs: list[int] = []
            ys: list[float] = []
            low: list[float] = []
            high: list[float] = []
            for name, files in generated:
                r = results.get(name, mode, key)
                if r is None or r.median is None:
                    continue
                xs.append(files)
                ys.append(r.median)
                low.append(r.median - min(r.runs))
                high.append(max(r.runs) - r.median)
            if xs:
                ax.errorbar(
                    xs, ys, yerr=[low, high], marker="o", capsize=3, color=color,
                    label=labels.get(key, key),
                )  # fmt: skip
            if real is not None:
                r = results.get(real[0], mode, key)
                if r is not None and r.median is not None:
                    ax.plot(
                        [real[1]], [r.median], marker="s", markerfacecolor="none",
                        color=color, linestyle="none",
                    )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("migration files")
        ax.set_ylabel("seconds (median, bars: min-max)")
        ax.set_title(MODE_LABEL[mode])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}\n(hollow squares: the real migrations/)", fontsize=10)
    fig.tight_layout()
    staging = path.with_name(path.name + ".tmp")
    fig.savefig(staging, format="png", dpi=110)
    plt.close(fig)
    staging.replace(path)
