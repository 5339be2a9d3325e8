"""The markdown report (bench/results/latest.md)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

import psutil

from bench.measure import IDLE_PHASES, THROUGHPUT_ROUNDS, Case, Run
from bench.planning import PLANNING_ROUNDS, Scale

MB = 1024**2
TARGETS = {
    "small": 1.8,  # workflow over one dicognito process, files/s
    "large": 1.5,
    "mixed": 1.8,
    "job_rss_mb": 300,  # peak RSS of any job's process tree
    "dryrun_s": 20.0,  # 5,000-session `snakemake -n`
    "noop_s": 30.0,  # 5,000-session rerun with nothing to do
    "planning_ratio": 1.0,  # dry run and no-op rerun over the bare chain's dry run
}
RULE_ORDER = ("unpack_archives", "anonymize_session", "publish_session", "dataset_summary", "html_report")


def machine_info(root: Path) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    git = ["git", "-C", str(root)]
    commit = subprocess.run([*git, "log", "-1", "--format=%h"], check=False, capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "-uno"], check=False, capture_output=True, text=True)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": platform.python_version(),
        "versions": ", ".join(f"{name} {version(name)}" for name in ("snakemake", "dicognito", "pydicom")),
        "checkout": commit.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else ""),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def verdict(ok: bool, valid: bool) -> str:
    return "PASS" if ok and valid else "FAIL" if valid else "INVALID (a run failed)"


def case_lines(case: Case, cores: int) -> list[str]:
    tree, runs = case.tree, case.runs
    workflow = runs["workflow"]
    lines = [
        f"### {case.name}: {tree.files} files, {tree.bytes / MB:.0f} MB, {len(tree.sessions)} sessions",
        "",
        *[f"{note}." for note in tree.notes],
        f"Tree built in {tree.build_s:.1f} s.",
        "",
        "| run | seconds | files/s | MB/s | CPU s | core use | peak RSS MB | load at start |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    heaviest = max((job.peak_rss for job in workflow.sampler.jobs.values()), default=0)
    labels = {
        "workflow": f"workflow `snakemake --cores {cores}` (RSS: heaviest job)",
        "dicognito": "`python -m dicognito --in-place`, 1 process",
        "dicognito_par": f"`python -m dicognito --in-place`, {cores} processes side by side",
        "pydicom": "pydicom read+save loop, 1 process",
    }
    for key, label in labels.items():
        run = runs[key]
        rss = heaviest if key == "workflow" else run.peak_rss
        lines.append(
            f"| {with_exit(label, run)} | {run.seconds:.1f} | {tree.files / run.seconds:.0f} "
            f"| {tree.bytes / MB / run.seconds:.1f} | {run.cpu_s:.1f} | {run.utilisation(cores):.0%} | "
            f"{rss / MB:.0f} | {run.load:.2f} |"
        )
    one, side_by_side = runs["dicognito"].seconds, runs["dicognito_par"].seconds
    summary = (
        f"Workflow: {one / workflow.seconds:.2f}x one dicognito process, {side_by_side / workflow.seconds:.2f}x "
        f"{cores} side by side ({cores} processes reach {one / side_by_side:.2f}x one here); CPU per file "
        f"{workflow.cpu_s / runs['dicognito'].cpu_s:.2f}x one dicognito process's, "
        f"{workflow.cpu_s / runs['dicognito_par'].cpu_s:.2f}x {cores} side by side's (as the workflow, they share "
        f"the cores: where a busy core slows its neighbour, CPU seconds stretch). Snakemake: first job after "
        f"{workflow.sampler.first_job:.1f} s, {workflow.seconds - workflow.sampler.last_job:.1f} s after the last; "
        f"its own process peaked at {workflow.peak_rss / MB:.0f} MB."
    )
    rounds = (
        f"The workflow and the dicognito runs: the fastest of {THROUGHPUT_ROUNDS} alternating rounds each (this "
        "machine's speed drifts within minutes); the idle cores, jobs and ceiling below are of that workflow run."
    )
    lines += [
        "",
        summary,
        "",
        rounds,
        "",
        *idle_lines(workflow, cores),
        *job_lines(workflow),
        *ceiling_lines(case, cores),
        "",
    ]
    lines += [f"- **{problem}**" for problem in case.problems] + ([""] if case.problems else [])
    return lines


def ceiling(one_s: float, cpu_s: float, cores: int, core_use: float) -> float:
    """The speed-up over one process taking `one_s` that `cpu_s` of CPU allows at `core_use` of `cores`."""
    return one_s * cores * core_use / cpu_s


def ceiling_lines(case: Case, cores: int) -> list[str]:
    """What the target leaves the run, and what the CPU spent allows even with no idle core: at the core use N
    dicognito processes side by side reach here, the most any N processes can be expected to reach."""
    runs = case.runs
    workflow, one = runs["workflow"], runs["dicognito"]
    core_use = runs["dicognito_par"].utilisation(cores)
    anonymize_cpu = sum(job.cpu_s for job in workflow.sampler.jobs.values() if job.rule == "anonymize_session")
    target = TARGETS[case.name]
    budget = one.seconds / target * cores * core_use
    return [
        f"Ceiling, at the {core_use:.0%} core use {cores} dicognito processes reach here: the run's CPU "
        f"({workflow.cpu_s:.1f} s, {workflow.cpu_s / one.cpu_s:.2f}x one dicognito process's) allows "
        f"{ceiling(one.seconds, workflow.cpu_s, cores, core_use):.2f}x one dicognito process, the anonymize jobs' "
        f"alone ({anonymize_cpu:.1f} s) {ceiling(one.seconds, anonymize_cpu, cores, core_use):.2f}x. "
        f"{target}x leaves the whole run {budget:.1f} CPU-s ({budget / one.cpu_s:.2f}x one dicognito process's), "
        f"Snakemake's own process included ({workflow.sampler.own_cpu:.1f} s)."
    ]


def idle_lines(run: Run, cores: int) -> list[str]:
    """Where the idle cores went: core-seconds no process of the run used, by what was running then."""
    idle = run.idle_cores(cores)
    total = cores * run.seconds
    lines = [
        f"Idle cores: {sum(idle.values()):.1f} of {total:.1f} core-seconds ({sum(idle.values()) / total:.0%}), "
        "by what was running (0.1 s samples of the whole process tree):",
        "",
        "| while | idle core-seconds | share of the run's core-seconds |",
        "|---|---:|---:|",
    ]
    lines += [f"| {IDLE_PHASES[phase]} | {seconds:.1f} | {seconds / total:.0%} |" for phase, seconds in idle.items()]
    return lines + [""]


def with_exit(label: str, run: Run) -> str:
    return f"{label} **exit {run.rc}**" if run.rc else label


def job_lines(run: Run) -> list[str]:
    """Per rule: jobs seen, their summed wall time, and the heaviest job (psutil samples every 0.1 s)."""
    by_rule: dict[str, list] = {}
    for job in run.sampler.jobs.values():
        by_rule.setdefault(job.rule, []).append(job)
    lines = [
        "| rule | jobs | job seconds, summed | job CPU s, summed | peak RSS MB (heaviest job) | its session |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for rule in sorted(by_rule, key=lambda r: RULE_ORDER.index(r) if r in RULE_ORDER else 99):
        jobs = by_rule[rule]
        top = max(jobs, key=lambda job: job.peak_rss)
        wall = sum(job.last_seen - job.first_seen for job in jobs)
        cpu = sum(job.cpu_s for job in jobs)
        lines.append(f"| {rule} | {len(jobs)} | {wall:.1f} | {cpu:.1f} | {top.peak_rss / MB:.0f} | {top.session} |")
    jobs_cpu = sum(job.cpu_s for job in run.sampler.jobs.values())
    lines.append(
        f"| Snakemake's own process | 1 | {run.seconds:.1f} | {run.sampler.own_cpu:.1f} | {run.peak_rss / MB:.0f} | |"
    )
    unseen = run.cpu_s - jobs_cpu - run.sampler.own_cpu
    lines.append(f"| not seen by the 0.1 s samples (ends of jobs, short jobs) | | | {unseen:.1f} | | |")
    return lines + [""]


def scale_lines(scale: Scale, cores: int) -> list[str]:
    tree = scale.tree
    labels = {
        "dryrun": f"`snakemake -n` (the fastest of {PLANNING_ROUNDS}, alternating with the bare chain's)",
        "bare": f"bare chain of 4 trivial rules, `snakemake -n` (the yardstick; the fastest of {PLANNING_ROUNDS})",
        "noop": f"rerun `snakemake --cores {cores}` with nothing to do",
        "dryrun_archives": "`snakemake -n` after a small zip went into every session (3 jobs per session)",
    }
    lines = [
        f"### scale: {len(tree.sessions)} sessions x {tree.files // len(tree.sessions)} tiny files",
        "",
        f"Tree built in {tree.build_s:.1f} s.",
        "",
        "| run | seconds | / bare chain | CPU s | peak RSS MB | load at start |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        run = scale.runs[key]
        lines.append(
            f"| {with_exit(label, run)} | {run.seconds:.1f} | "
            f"{scale.ratio(key):.2f}x | {run.cpu_s:.1f} | {run.peak_rss / MB:.0f} | {run.load:.2f} |"
        )
    set_up = (
        "The rerun's set-up: each session's published folder and report, the summary and the HTML page are created "
        "empty, as a finished run leaves them, but without Snakemake's metadata records of the jobs (they come only "
        "from running the jobs, or from `--touch`, which takes minutes here): the rerun checks that each record "
        "exists, not what it holds, so a real no-op rerun costs somewhat more."
    )
    lines += ["", set_up, ""]
    return lines + [f"- **{problem}**" for problem in scale.problems] + ([""] if scale.problems else [])


def target_lines(cases: list[Case], scale: Scale | None) -> list[str]:
    lines = ["### Targets", "", "| target | measured | result |", "|---|---|---|"]
    for case in cases:
        ratio = case.runs["dicognito"].seconds / case.runs["workflow"].seconds
        lines.append(
            f"| {case.name}: workflow >= {TARGETS[case.name]}x one dicognito process | {ratio:.2f}x | "
            f"{verdict(ratio >= TARGETS[case.name], not case.problems)} |"
        )
    jobs = [
        (job.peak_rss, case.name, job.rule, job.session)
        for case in cases
        for job in case.runs["workflow"].sampler.jobs.values()
    ]
    if jobs:
        peak, name, rule, session = max(jobs)
        lines.append(
            f"| peak RSS of any job <= {TARGETS['job_rss_mb']} MB | {peak / MB:.0f} MB ({name}: {rule} "
            f"{session}) | {verdict(peak <= TARGETS['job_rss_mb'] * MB, not any(c.problems for c in cases))} |"
        )
    if scale:
        n = len(scale.tree.sessions)
        note = "" if n >= 5000 else f" (only {n} sessions: --quick)"
        valid = not scale.problems
        for key, what in (("dryrun", "`snakemake -n`"), ("noop", "no-op rerun")):
            seconds = scale.runs[key].seconds
            limit = TARGETS[f"{key}_s"]
            lines.append(
                f"| 5,000 sessions: {what} <= {limit:.0f} s{note} | {seconds:.1f} s | "
                f"{verdict(seconds <= limit, valid)} |"
            )
            limit = TARGETS["planning_ratio"]
            lines.append(
                f"| {what} <= {limit:.1f}x the bare chain's dry run{note} | {scale.ratio(key):.2f}x | "
                f"{verdict(scale.ratio(key) <= limit, valid)} |"
            )
    return lines


def report(info: dict[str, str], mode: str, cores: int, cases: list[Case], scale: Scale | None, total_s: float) -> str:
    lines = [f"# Workflow benchmark ({mode})", "", "| machine | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items()] + [""]
    for case in cases:
        lines += case_lines(case, cores)
    if scale:
        lines += scale_lines(scale, cores)
    lines += target_lines(cases, scale)
    lines += [
        "",
        f"Whole benchmark: {total_s:.0f} s; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
    ]
    return "\n".join(lines)
