"""Running commands and measuring them from outside: wall time, and CPU from wait4() (the command and every
descendant it waited for); memory from psutil samples every 0.1 s: each command's own process, and each
Snakemake job (one direct child of Snakemake with all its descendants). Not wait4's ru_maxrss: it counts the
memory the bench itself held when it forked the command."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

PYTHON = sys.executable
SNAKEMAKE = str(Path(PYTHON).parent / "snakemake")
SEED = "bench-seed-0123456789abcdef"
# A job's rule: the script its command runs (shell rules run <rule>.py; script: rules a copy named after it).
SCRIPT_NAME = re.compile(r"(?:\.snakemake/scripts/tmp[^./]*\.|(?<![\w.]))([A-Za-z0-9_]+)\.py\b")
# --log <log_dir>/<rule>/<subject>/<session>.log
SESSION_LOG = re.compile(r"/([A-Za-z0-9_]+)/[A-Za-z0-9_.-]+/([A-Za-z0-9_.-]+)\.log\b")
WORKERS = re.compile(r"--workers[ =](\d+)")  # anonymize_session's worker processes (its threads)


UNNAMED = "(not identified)"  # a job that ended before its command line was read
IDLE_PHASES = {
    "start": "before the first job (Snakemake starts, plans)",
    "no_worker": "no anonymize job running (unpack, publish, the reports)",
    "fewer_workers": "fewer anonymize workers than cores (the last sessions, a session's last files)",
    "every_core": "an anonymize worker per core (their start: imports, pool; results; writes)",
    "end": "after the last job (reports' end, Snakemake exits)",
}


@dataclass
class Job:
    rule: str = UNNAMED
    session: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    peak_rss: int = 0  # summed over the job's process tree
    cpu_s: float = 0.0  # user + system of the job's process tree at its last sample (the last 0.1 s is missed)
    workers: int = 0  # worker processes it runs (anonymize_session only)


@dataclass
class Interval:
    """Between two samples: the CPU the whole process tree spent, and the anonymize workers running at its end."""

    start: float
    end: float
    cpu_s: float
    workers: int


class JobSampler(threading.Thread):
    """Samples a running command every `interval` seconds: its own RSS, and its children as jobs."""

    def __init__(self, pid: int, started: float, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.started, self.interval = psutil.Process(pid), started, interval
        self.jobs: dict[tuple[int, float], Job] = {}
        self.own_peak = 0
        self.own_cpu = 0.0  # the command's own process, without its jobs
        self.intervals: list[Interval] = []
        self._last = (0.0, 0.0)  # (time, CPU of the whole tree) at the previous sample
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)

    def sample(self) -> None:
        now = time.perf_counter() - self.started
        try:
            self.own_peak = max(self.own_peak, self.root.memory_info().rss)
            times = self.root.cpu_times()
            self.own_cpu = times.user + times.system
            children = self.root.children()
        except psutil.Error:
            return
        tree_cpu = cpu_of(self.root, waited=True)
        workers = 0
        for child in children:
            try:
                key = (child.pid, child.create_time())
                procs = [child, *child.children(recursive=True)]
                job = self.jobs.setdefault(key, Job(first_seen=now))
                if job.rule == UNNAMED:
                    name_job(job, " ".join(child.cmdline()))
            except psutil.Error:
                continue
            job.last_seen = now
            job.peak_rss = max(job.peak_rss, sum(rss_of(p) for p in procs))
            # Live processes with the ended children they waited for: an ended process is counted once,
            # by whichever process waited for it.
            job_cpu = sum(cpu_of(p, waited=True) for p in procs)
            job.cpu_s = max(job.cpu_s, job_cpu)
            tree_cpu += job_cpu
            workers += job.workers
        self.intervals.append(Interval(self._last[0], now, tree_cpu - self._last[1], workers))
        self._last = (now, tree_cpu)

    @property
    def first_job(self) -> float:
        return min((job.first_seen for job in self.jobs.values()), default=0.0)

    @property
    def last_job(self) -> float:
        return max((job.last_seen for job in self.jobs.values()), default=0.0)


def rss_of(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.Error:  # ended between listing and sampling
        return 0


def cpu_of(proc: psutil.Process, waited: bool = False) -> float:
    """User + system seconds; `waited`: with the children it has waited for (ended workers)."""
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + (times.children_user + times.children_system if waited else 0.0)


def name_job(job: Job, cmdline: str) -> None:
    script = SCRIPT_NAME.search(cmdline)
    if script:
        job.rule = script.group(1)
        workers = WORKERS.search(cmdline)
        job.workers = int(workers.group(1)) if workers else 0
        log = SESSION_LOG.search(cmdline)
        if log and log.group(1) == job.rule:
            job.session = log.group(2)


@dataclass
class Run:
    label: str
    seconds: float
    cpu_s: float  # user + system of the command and every descendant it waited for
    peak_rss: int  # bytes, the largest of the commands' own processes (their children are jobs)
    rc: int
    log: Path
    load: float  # 1-minute load average at the start
    sampler: JobSampler  # of the first command
    problems: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def utilisation(self, cores: int) -> float:
        return self.cpu_s / (self.seconds * cores)

    def idle_cores(self, cores: int) -> dict[str, float]:
        """Core-seconds left idle, by what was running (from the 0.1 s samples of the process tree)."""
        first, last = self.sampler.first_job, self.sampler.last_job
        idle = dict.fromkeys(IDLE_PHASES, 0.0)
        for interval in self.sampler.intervals:
            unused = cores * (interval.end - interval.start) - interval.cpu_s
            if interval.end <= first:
                phase = "start"
            elif interval.start >= last:
                phase = "end"
            elif interval.workers == 0:
                phase = "no_worker"
            elif interval.workers < cores:
                phase = "fewer_workers"
            else:
                phase = "every_core"
            idle[phase] += unused
        # After the last sample: the command's last moments, and what the samples missed (from wait4's total).
        idle["end"] += cores * self.seconds - self.cpu_s - sum(idle.values())
        return idle


def run_timed(label: str, cmd: list[str], log: Path, cwd: Path, timeout: float | None = None) -> Run:
    """Run `cmd`, output to `log`; after `timeout` seconds it is terminated (Snakemake lets running jobs end)."""
    return run_side_by_side(label, [cmd], log.parent, cwd, timeout, log)


def run_side_by_side(
    label: str, cmds: list[list[str]], log_dir: Path, cwd: Path, timeout: float | None = None, log: Path | None = None
) -> Run:
    """Start every command at once; wall time until the last ends, CPU summed, the largest one's peak RSS."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = [log] if log else [log_dir / f"{label}.{i}.log" for i in range(len(cmds))]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    procs = []
    for cmd, path in zip(cmds, logs, strict=False):
        with open(path, "wb") as out:
            procs.append(subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT))
    samplers = [JobSampler(proc.pid, started) for proc in procs]
    for sampler in samplers:
        sampler.start()
    timer = threading.Timer(timeout, procs[0].terminate) if timeout else None
    if timer:
        timer.start()
    rc, cpu = 0, 0.0
    for proc in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        rc = rc or proc.returncode
        cpu += usage.ru_utime + usage.ru_stime
    elapsed = time.perf_counter() - started
    if timer:
        timer.cancel()
    for sampler in samplers:
        sampler.stopped.set()
        sampler.join()
    run = Run(label, elapsed, cpu, max(s.own_peak for s in samplers), rc, logs[0], load, samplers[0])
    if rc != 0:
        run.problems.append(f"{label} exited {rc} (log: {logs[0]})")
    return run


# ---------------------------------------------------------------------------------------------------------
# The workflow


def snapshot_workflow(root: Path, target: Path) -> Path:
    """Copy the workflow's files: edits to the checkout while the bench runs then change nothing measured
    (and trigger no reruns: Snakemake reruns jobs whose code changed)."""
    for part in ("Snakefile", "rules", "scripts", "dicom_deid", "config", "profiles", "environment.yml"):
        source = root / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    return target


def workflow_config(case_dir: Path, input_dir: Path) -> dict[str, str]:
    return {
        "input_dir": str(input_dir),
        "output_dir": str(case_dir / "output"),
        "work_dir": str(case_dir / "work"),
        "log_dir": str(case_dir / "logs"),
        "key_file": str(case_dir / "keys" / "deid.key"),
    }


# Further KEY=VALUE settings for every workflow run (bench --workflow-config), e.g. profile=basic.
EXTRA_CONFIG: list[str] = []


def snakemake_cmd(case_dir: Path, input_dir: Path, cores: int, *extra: str) -> list[str]:
    config = [f"{key}={value}" for key, value in workflow_config(case_dir, input_dir).items()] + EXTRA_CONFIG
    return [SNAKEMAKE, "--cores", str(cores), *extra, "--config", *config]


def write_key(case_dir: Path) -> None:
    """A fixed key, so every run de-identifies the same way (the workflow would create a random one)."""
    key = case_dir / "keys" / "deid.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(SEED * 2 + "\n")
    key.chmod(0o600)


def workflow_problems(case_dir: Path, sessions: int, instances: int) -> list[str]:
    """A run that did not publish every session, or not every instance, is not a valid measurement."""
    summary = case_dir / "output" / "reports" / "summary.tsv"
    if not summary.exists():
        return ["no summary.tsv"]
    with summary.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    problems = []
    failed = [row["session"] for row in rows if row["state"] != "published"]
    if failed or len(rows) != sessions:
        problems.append(f"{len(rows)} of {sessions} sessions summarised; not passing: {failed}")
    written = sum(
        name != ".snakemake_timestamp"  # Snakemake's marker in each directory() output
        for folder, _, names in os.walk(case_dir / "output")
        if "/reports" not in folder
        for name in names
    )
    if written != instances:
        problems.append(f"{written} of {instances} instances in the output")
    return problems


def run_workflow(case_dir: Path, input_dir: Path, workflow_dir: Path, cores: int, sessions: int, instances: int) -> Run:
    write_key(case_dir)
    run = run_timed(
        "workflow",
        snakemake_cmd(case_dir, input_dir, cores),
        case_dir / "runs" / "workflow.log",
        workflow_dir,
    )
    run.problems += workflow_problems(case_dir, sessions, instances)
    return run


# ---------------------------------------------------------------------------------------------------------
# The references: dicognito, one process and two side by side, and a plain pydicom read+save loop

PYDICOM_LOOP = """
import os, sys, pydicom
source, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0
for folder, _, files in os.walk(source, followlinks=True):
    for name in sorted(files):
        pydicom.dcmread(os.path.join(folder, name)).save_as(os.path.join(out, f"{n:06d}.dcm"))
        n += 1
"""


def fresh_copy(plain: Path, target: Path) -> list[str]:
    """A copy of the plain tree for dicognito --in-place (links followed); its files, sorted."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(plain, target, symlinks=False)
    return sorted(str(Path(folder, name)) for folder, _, names in os.walk(target) for name in names)


def run_dicognito(plain: Path, case_dir: Path, processes: int) -> Run:
    """`python -m dicognito --in-place`: one process over the whole tree, or N each on every N-th file."""
    files = fresh_copy(plain, case_dir / "dicognito")
    base = [PYTHON, "-m", "dicognito", "--seed", SEED, "--in-place"]
    if processes == 1:
        cmds = [base + [str(case_dir / "dicognito")]]
    else:
        cmds = [base + files[i::processes] for i in range(processes)]
    run = run_side_by_side(f"dicognito-x{processes}", cmds, case_dir / "runs", case_dir)
    shutil.rmtree(case_dir / "dicognito")
    return run


def run_pydicom(plain: Path, case_dir: Path) -> Run:
    out = case_dir / "pydicom"
    run = run_timed(
        "pydicom", [PYTHON, "-c", PYDICOM_LOOP, str(plain), str(out)], case_dir / "runs" / "pydicom.log", case_dir
    )
    shutil.rmtree(out, ignore_errors=True)
    return run


# ---------------------------------------------------------------------------------------------------------
# A throughput case: the workflow and the references over the same instances


@dataclass
class Case:
    name: str
    tree: object  # trees.Tree
    runs: dict[str, Run]

    @property
    def problems(self) -> list[str]:
        return [problem for run in self.runs.values() for problem in run.problems]


# The workflow and the two dicognito runs alternate, this many times, and the fastest of each counts: this
# machine's speed drifts by 10-20 % within minutes, which moved a single round's ratio as much (mixed case,
# one hour, same per-file instruction count: 1.01x to 1.26x one dicognito process).
THROUGHPUT_ROUNDS = 2


def fastest(runs: list[Run]) -> Run:
    """The fastest run, unless one had problems: that one, so that they are reported."""
    failed = [run for run in runs if run.problems]
    return failed[0] if failed else min(runs, key=lambda run: run.seconds)


def measure_case(name: str, tree, case_dir: Path, workflow_dir: Path, cores: int) -> Case:
    print(
        f"[{name}] {tree.files} files, {tree.bytes / 1024**2:.0f} MB: workflow, dicognito x1, x{cores},"
        f" {THROUGHPUT_ROUNDS} rounds; pydicom",
        flush=True,
    )
    rounds: dict[str, list[Run]] = {"workflow": [], "dicognito": [], "dicognito_par": []}
    for _ in range(THROUGHPUT_ROUNDS):
        for folder in ("output", "work", "logs"):
            shutil.rmtree(case_dir / folder, ignore_errors=True)
        rounds["workflow"].append(
            run_workflow(case_dir, tree.root, workflow_dir, cores, len(tree.sessions), tree.files)
        )
        if rounds["workflow"][-1].problems:
            break
        rounds["dicognito"].append(run_dicognito(tree.plain, case_dir, 1))
        rounds["dicognito_par"].append(run_dicognito(tree.plain, case_dir, cores))
    for folder in ("output", "work"):
        shutil.rmtree(case_dir / folder, ignore_errors=True)
    runs = {key: fastest(found) for key, found in rounds.items() if found}
    if "dicognito" not in runs:  # the workflow failed at once: the references still give the scale
        runs["dicognito"] = run_dicognito(tree.plain, case_dir, 1)
        runs["dicognito_par"] = run_dicognito(tree.plain, case_dir, cores)
    runs["pydicom"] = run_pydicom(tree.plain, case_dir)
    return Case(name, tree, runs)
