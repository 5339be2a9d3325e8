"""Benchmark the de-identification workflow against dicognito and plain pydicom on this machine.

Run from the checkout:  .venv/bin/python bench/bench.py [--quick] [--out bench/results/latest.md]

Cases (all trees are built in a temporary folder from pydicom's packaged DICOMs):
  small  copies of MR_small.dcm (~10 KB) in 4 sessions of 2 subjects; one session is 4x bigger than the others
  large  512x512 CT slices (CT_small's pixels tiled 4x4) plus one enhanced multiframe per session
         (eCT_Supplemental's 2 frames and per-frame functional groups repeated)
  scale  many sessions of tiny non-DICOM files; only `snakemake -n` and a no-op rerun are timed (and, for the
         record, `snakemake -n` once more after a small zip went into every session)
Every copy gets a distinct SOPInstanceUID and per-subject/per-session identifying values.

The workflow runs as `snakemake --cores N --config input_dir=... ...` with every path in the temporary folder,
from a snapshot of the checkout's workflow files copied there at the start (others edit the checkout while
this runs: an edit would change the measured code and make Snakemake rerun jobs whose code changed); a
preflight run on 8 files must pass first. `--live` runs in the checkout instead (then Snakemake's records of
the temporary paths are removed from its .snakemake/ at the end). Job memory is sampled with psutil every
0.1 s: a job is one direct child process of Snakemake (the script's Python process) plus all of its
descendants (its worker processes). CPU seconds come from wait4() (the command and all its descendants).

`--profile-files N` instead profiles anonymize_sources and verify_session in-process (cProfile, one worker).
"""

from __future__ import annotations

import argparse
import base64
import copy
import cProfile
import datetime
import inspect
import io
import os
import platform
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT  # where snakemake runs; main() points it at a snapshot of the checkout unless --live
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "dicom_deid", "config", "profiles", "environment.yml")
PYTHON = sys.executable
SNAKEMAKE = str(Path(PYTHON).parent / "snakemake")
SEED = "bench-seed-0123456789abcdef"
MB = 1024**2

SIZES = {
    # small: files per normal session (the 4th session holds big_factor times as many)
    "full": dict(small_per_session=300, big_factor=4, large_mb=520, large_sessions=3, mf_frames=96,
                 scale_sessions=5000, scale_files=50),
    "quick": dict(small_per_session=60, big_factor=4, large_mb=100, large_sessions=3, mf_frames=32,
                  scale_sessions=500, scale_files=50),
}

TARGETS = {
    "small_ratio": 1.8,  # workflow files/s over single-process dicognito, small files
    "large_ratio": 1.5,  # same, large files
    "job_rss_mb": 300,  # peak RSS of any job (process tree)
    "dryrun_s": 20.0,  # 5,000-session snakemake -n
    "noop_s": 30.0,  # 5,000-session rerun with nothing to do
}

# Order of rules in the job tables. A job is named after its script: the per-session rules run
# `<name>.py --... --log <log_dir>/<name>/<SESSION>.log` as a shell command; `script:` rules run as
# .snakemake/scripts/tmp<random>.<name>.py.
SCRIPT_RULES = ("unpack_archives", "anonymize_session", "verify_session", "dataset_summary")
SCRIPT_NAME = re.compile(r"(?:\.snakemake/scripts/tmp[^./]*\.|(?<![\w.]))([A-Za-z0-9_]+)\.py\b")


# ----------------------------------------------------------------------------------------------------------
# Test trees


@dataclass
class Tree:
    root: Path
    sessions: dict[str, tuple[int, int]] = field(default_factory=dict)  # "<SUB>_<SES>" -> (files, bytes)
    build_s: float = 0.0

    @property
    def files(self) -> int:
        return sum(n for n, _ in self.sessions.values())

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.sessions.values())

    def dicom_paths(self) -> list[str]:
        return sorted(str(p) for p in self.root.rglob("*.dcm"))


def session_dir(root: Path, subject: str, ses: str) -> Path:
    return root / subject / "imaging" / f"{subject}_{ses}"


def identify(ds: pydicom.Dataset, subject: str, ses: str, series: int) -> None:
    """Plant per-subject and per-session identifying values (distinct from every value that is kept)."""
    n = int(subject[-2:])
    ds.PatientID = f"PID{n:04d}X7"
    ds.PatientName = f"Testperson^Bench{n:02d}"
    ds.PatientBirthDate = f"19{50 + n:02d}0{1 + n % 9}1{n % 9}"
    ds.PatientSex = "F" if n % 2 else "M"
    ds.PatientAddress = f"{n} Benchmark Lane, Springfield"
    ds.Occupation = "Benchmark tester"
    ds.AccessionNumber = f"ACC{n:03d}{ses}99"
    ds.StudyID = f"ST{n:02d}{ses}"
    ds.InstitutionName = "Bench Memorial Hospital"
    ds.InstitutionAddress = "77 Clinic Road, Laketown"
    ds.StationName = f"BENCHSTN{series:02d}"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = f"2021031{ses[-1]}"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["bench-study", subject, ses])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["bench-series", subject, ses, str(series)])


def new_instance(ds: pydicom.Dataset, *entropy: str) -> None:
    uid = generate_uid(entropy_srcs=["bench-sop", *entropy])
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid


def build_small(root: Path, per_session: int, big_factor: int) -> Tree:
    """MR_small copies: 2 subjects x 2 sessions; the last session holds big_factor times as many files."""
    started = time.perf_counter()
    tree = Tree(root)
    template = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    layout = [("BENCH01", "01", per_session), ("BENCH01", "02", per_session), ("BENCH02", "01", per_session),
              ("BENCH02", "02", per_session * big_factor)]
    for subject, ses, count in layout:
        folder = session_dir(root, subject, ses)
        size = 0
        for i in range(count):
            series = 1 + i % 2
            ds = copy.deepcopy(template)
            identify(ds, subject, ses, series)
            new_instance(ds, subject, ses, str(i))
            ds.InstanceNumber = i + 1
            path = folder / f"series{series}" / f"MR{i:05d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            size += path.stat().st_size
        tree.sessions[f"{subject}_{ses}"] = (count, size)
    tree.build_s = time.perf_counter() - started
    return tree


def tile(frame: bytes, rows: int, cols: int, times: int, bytes_per_pixel: int = 2) -> bytes:
    """Repeat a frame `times` x `times`: (rows x cols) -> (rows*times x cols*times)."""
    width = cols * bytes_per_pixel
    lines = [frame[r * width : (r + 1) * width] * times for r in range(rows)]
    return b"".join(lines) * times


def big_ct_template() -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PixelData = tile(ds.PixelData, ds.Rows, ds.Columns, 4)
    ds.Rows, ds.Columns = ds.Rows * 4, ds.Columns * 4
    return ds


def big_multiframe_template(frames: int) -> pydicom.Dataset:
    """eCT_Supplemental.dcm (enhanced CT, 2 frames of 512x512) with its frames and per-frame groups repeated."""
    ds = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    count = int(ds.NumberOfFrames)
    per_frame = len(ds.PixelData) // count
    originals = [ds.PixelData[i * per_frame : (i + 1) * per_frame] for i in range(count)]
    ds.PixelData = b"".join(originals[i % count] for i in range(frames))
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    ds.PerFrameFunctionalGroupsSequence = [copy.deepcopy(groups[i % count]) for i in range(frames)]
    ds.NumberOfFrames = frames
    return ds


def build_large(root: Path, total_mb: int, sessions: int, mf_frames: int) -> Tree:
    """Per session one multiframe of mf_frames 512x512 frames, then 512x512 CT slices up to total_mb/sessions."""
    started = time.perf_counter()
    tree = Tree(root)
    ct = big_ct_template()
    mf = big_multiframe_template(mf_frames)
    per_session = total_mb * MB // sessions
    layout = [("BENCH11", "01"), ("BENCH11", "02"), ("BENCH12", "01"), ("BENCH12", "02"), ("BENCH13", "01")]
    for subject, ses in (layout * (1 + sessions // len(layout)))[:sessions]:
        folder = session_dir(root, subject, ses)
        (folder / "MF").mkdir(parents=True)
        (folder / "CT").mkdir(parents=True)
        ds = copy.deepcopy(mf)
        identify(ds, subject, ses, 1)
        new_instance(ds, subject, ses, "mf")
        path = folder / "MF" / "MF00001.dcm"
        ds.save_as(path, enforce_file_format=True)
        size, count, i = path.stat().st_size, 1, 0
        while size < per_session:
            ds = copy.copy(ct)  # shallow: only top-level values are replaced below
            ds.file_meta = copy.deepcopy(ct.file_meta)
            identify(ds, subject, ses, 2)
            new_instance(ds, subject, ses, str(i))
            ds.InstanceNumber = i + 1
            path = folder / "CT" / f"CT{i:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            size += path.stat().st_size
            count += 1
            i += 1
        tree.sessions[f"{subject}_{ses}"] = (count, size)
    tree.build_s = time.perf_counter() - started
    return tree


def build_scale(root: Path, sessions: int, files: int) -> Tree:
    """`sessions` sessions (10 per subject) of `files` 2-byte files each."""
    started = time.perf_counter()
    tree = Tree(root)
    for s in range(sessions):
        subject, ses = f"SCALE{s // 10:05d}", f"{s % 10:02d}"
        folder = session_dir(root, subject, ses)
        folder.mkdir(parents=True)
        for f in range(files):
            fd = os.open(folder / f"f{f:03d}.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, b"x\n")
            os.close(fd)
        tree.sessions[f"{subject}_{ses}"] = (files, 2 * files)
    tree.build_s = time.perf_counter() - started
    return tree


# ----------------------------------------------------------------------------------------------------------
# Running and sampling


@dataclass
class JobStats:
    rule: str = "?"
    session: str = "?"
    first_seen: float = 0.0
    last_seen: float = 0.0
    peak_rss: int = 0  # sum over the job's process tree
    peak_single: int = 0  # largest single process
    peak_procs: int = 0


class JobSampler:
    """Samples every descendant of a Snakemake process; one job = one direct child and its descendants."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.jobs: dict[tuple[int, float], JobStats] = {}
        self.snakemake_peak = 0
        self.samples = 0
        self.cpu_s = 0.0
        self.t0 = 0.0
        self.first_job = None  # seconds after start when a job was first seen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cmdlines: dict[tuple[int, float], str] = {}

    def start(self, pid: int, t0: float) -> None:
        self.t0 = t0
        self._root = psutil.Process(pid)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
        self.cpu_s = time.thread_time()

    def _cmdline(self, proc: psutil.Process, key) -> str:
        if key not in self._cmdlines:
            self._cmdlines[key] = " ".join(proc.cmdline())
        return self._cmdlines[key]

    def _session(self, proc: psutil.Process, rule: str) -> str:
        """The job's session, from its log path: on its command line, in the script Snakemake wrote (its
        preamble), else among its open files."""
        pattern = re.compile(rf"/{rule}/([A-Za-z0-9_.-]+)\.log")
        try:
            found = pattern.search(" ".join(proc.cmdline()))
            if found:
                return found.group(1)
            for arg in proc.cmdline():
                if ".snakemake/scripts/" in arg:
                    found = pattern.search(Path(proc.cwd(), arg).read_text(errors="replace"))
                    if found:
                        return found.group(1)
            for f in proc.open_files():
                found = pattern.search(f.path)
                if found:
                    return found.group(1)
        except (OSError, psutil.Error):
            pass
        return "?"

    def sample(self) -> None:
        now = time.perf_counter() - self.t0
        try:
            self.snakemake_peak = max(self.snakemake_peak, self._root.memory_info().rss)
            children = self._root.children()
        except psutil.Error:
            return
        self.samples += 1
        for child in children:
            try:
                key = (child.pid, child.create_time())
                procs = [child, *child.children(recursive=True)]
            except psutil.Error:
                continue
            stats = self.jobs.get(key)
            if stats is None:
                stats = self.jobs[key] = JobStats(first_seen=now)
                if self.first_job is None:
                    self.first_job = now
            stats.last_seen = now
            total, single = 0, 0
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                    if stats.rule == "?":
                        cmd = self._cmdline(proc, (proc.pid, proc.create_time()))
                        found = SCRIPT_NAME.search(cmd)
                        stats.rule = found.group(1) if found else "?"
                    if stats.session == "?" and stats.rule != "?":
                        stats.session = self._session(proc, stats.rule)
                except psutil.Error:
                    continue
                total += rss
                single = max(single, rss)
            stats.peak_rss = max(stats.peak_rss, total)
            stats.peak_single = max(stats.peak_single, single)
            stats.peak_procs = max(stats.peak_procs, len(procs))


@dataclass
class Run:
    label: str
    seconds: float
    rc: int
    maxrss: int  # bytes, largest single process among the command and its waited-for descendants
    log: Path
    sampler: JobSampler | None = None
    cpu_s: float = 0.0  # user + system CPU of the command and its waited-for descendants
    load: float = 0.0  # 1-minute load average when it started

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(line[:300] + (" ..." if len(line) > 300 else "")
                             for line in self.log_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def run_timed(label: str, cmd: list[str], log: Path, sample: bool = False, timeout: float | None = None) -> Run:
    """Run `cmd` in WORKFLOW_DIR, timing it with perf_counter; its output goes to `log`.

    After `timeout` seconds it gets SIGTERM (Snakemake then lets running jobs end), 60 s later SIGKILL.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sampler = JobSampler() if sample else None
    load = os.getloadavg()[0]
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=WORKFLOW_DIR, stdout=out, stderr=subprocess.STDOUT)
        if sampler:
            sampler.start(proc.pid, started)
        timers = []
        if timeout:
            timers = [threading.Timer(timeout, proc.send_signal, (signal.SIGTERM,)),
                      threading.Timer(timeout + 60, proc.send_signal, (signal.SIGKILL,))]
            for timer in timers:
                timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        for timer in timers:
            timer.cancel()
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    if sampler:
        sampler.stop()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(label, elapsed, proc.returncode, usage.ru_maxrss * 1024, log, sampler, cpu, load)


def run_parallel(label: str, cmds: list[list[str]], logdir: Path) -> Run:
    """Start every command at once; time until the last one ends."""
    logdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    procs = []
    for i, cmd in enumerate(cmds):
        out = open(logdir / f"{label}.{i}.log", "wb")
        procs.append((subprocess.Popen(cmd, cwd=WORKFLOW_DIR, stdout=out, stderr=subprocess.STDOUT), out))
    rc, maxrss, cpu = 0, 0, 0.0
    for proc, out in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        rc = rc or proc.returncode
        maxrss = max(maxrss, usage.ru_maxrss * 1024)
        cpu += usage.ru_utime + usage.ru_stime
        out.close()
    return Run(label, time.perf_counter() - started, rc, maxrss, logdir / f"{label}.0.log", None, cpu, load)


# --workflow-config KEY=VALUE ...: more --config entries for every workflow run (e.g. profile=basic).
EXTRA_CONFIG: list[str] = []


def workflow_config(case_dir: Path, input_dir: Path) -> list[str]:
    return [
        f"input_dir={input_dir}",
        f"output_dir={case_dir / 'output'}",
        f"work_dir={case_dir / 'work'}",
        f"log_dir={case_dir / 'logs'}",
        f"key_file={case_dir / 'keys' / 'deid.key'}",
        *EXTRA_CONFIG,
    ]


def snakemake_cmd(case_dir: Path, input_dir: Path, cores: int, *extra: str) -> list[str]:
    return [SNAKEMAKE, "--cores", str(cores), *extra, "--config", *workflow_config(case_dir, input_dir)]


def reset_outputs(case_dir: Path) -> None:
    for name in ("output", "work", "logs", "dicognito", "dicognito2", "pydicom"):
        shutil.rmtree(case_dir / name, ignore_errors=True)


def write_key(case_dir: Path) -> None:
    key = case_dir / "keys" / "deid.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (SEED * 2 + "\n").encode())
        os.close(fd)


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


PYDICOM_LOOP = """
import os, sys, pydicom
source, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
n = 0
for folder, _, files in os.walk(source):
    for name in sorted(files):
        ds = pydicom.dcmread(os.path.join(folder, name))
        ds.save_as(os.path.join(out, f"{n:06d}.dcm"))
        n += 1
print(n, "files")
"""


FAILED_LOGS: Path | None = None  # main() sets it: logs of failed runs are copied there


def failure_note(what: str, run: Run, case: str) -> str:
    """A note naming the failure, with the log's last lines; the log is kept beside the report."""
    kept = ""
    if FAILED_LOGS is not None and run.log.exists():
        FAILED_LOGS.mkdir(parents=True, exist_ok=True)
        target = FAILED_LOGS / f"failed-{case}-{run.label}.log"
        shutil.copyfile(run.log, target)
        kept = f" (log kept as {target})"
    tail = "\n".join(f"      {line}" for line in run.tail().splitlines())
    return f"{what}{kept}; last lines:\n\n```\n{tail}\n```"


@dataclass
class CaseResult:
    name: str
    tree: Tree
    runs: dict[str, Run]
    notes: list[str]


def workflow_ok(run: Run, case_dir: Path, tree: Tree) -> list[str]:
    """Problems with a workflow run: exit status, missing summary, failed sessions, file count."""
    problems = []
    if run.rc != 0:
        problems.append(f"snakemake exited {run.rc} (log: {run.log})")
    summary = case_dir / "output" / "reports" / "summary.tsv"
    if not summary.exists():
        problems.append("no summary.tsv")
    else:
        rows = summary.read_text().splitlines()[1:]
        failed = [r.split("\t")[0] for r in rows if not r.endswith("\tpass")]
        if failed or len(rows) != len(tree.sessions):
            problems.append(f"{len(rows)} sessions summarised, not passing: {failed}")
    written = sum(
        1
        for folder, _, files in os.walk(case_dir / "output")
        if not Path(folder).relative_to(case_dir / "output").parts[:1] == ("reports",)
        for name in files
        if name != ".snakemake_timestamp"
    )
    if written < tree.files:
        problems.append(f"only {written} of {tree.files} files in the output")
    return problems


def measure_case(name: str, tree: Tree, case_dir: Path, cores: int) -> CaseResult:
    """The workflow, dicognito (1 and 2 processes) and a pydicom read+save loop over the same files."""
    notes: list[str] = []
    runs: dict[str, Run] = {}
    reset_outputs(case_dir)
    write_key(case_dir)
    print(f"[{name}] workflow on {tree.files} files, {tree.bytes / MB:.0f} MB ...", flush=True)
    runs["workflow"] = run_timed(
        "workflow", snakemake_cmd(case_dir, tree.root, cores), case_dir / "runs" / "workflow.log", sample=True
    )
    problems = workflow_ok(runs["workflow"], case_dir, tree)
    if problems:
        notes.append(failure_note("workflow: " + "; ".join(problems), runs["workflow"], name))
    reset_outputs(case_dir)

    print(f"[{name}] dicognito ...", flush=True)
    out = case_dir / "dicognito"
    runs["dicognito"] = run_timed(
        "dicognito", [PYTHON, "-m", "dicognito", "--seed", SEED, "--output-directory", str(out), str(tree.root)],
        case_dir / "runs" / "dicognito.log",
    )
    if runs["dicognito"].rc != 0 or count_files(out) != tree.files:
        notes.append(f"dicognito: rc {runs['dicognito'].rc}, {count_files(out)} of {tree.files} files written")
    reset_outputs(case_dir)

    print(f"[{name}] dicognito x{cores} processes ...", flush=True)
    paths = tree.dicom_paths()
    out = case_dir / "dicognito2"
    # One output folder each: two processes creating the same folder race (one fails with FileExistsError).
    cmds = [[PYTHON, "-m", "dicognito", "--seed", SEED, "--output-directory", str(out / str(i)), *paths[i::cores]]
            for i in range(cores)]
    runs["dicognito_par"] = run_parallel("dicognito_par", cmds, case_dir / "runs")
    if runs["dicognito_par"].rc != 0 or count_files(out) != tree.files:
        notes.append(f"dicognito x{cores}: rc {runs['dicognito_par'].rc}, {count_files(out)} files written")
    reset_outputs(case_dir)

    print(f"[{name}] pydicom read+save ...", flush=True)
    out = case_dir / "pydicom"
    runs["pydicom"] = run_timed(
        "pydicom", [PYTHON, "-c", PYDICOM_LOOP, str(tree.root), str(out)], case_dir / "runs" / "pydicom.log"
    )
    if runs["pydicom"].rc != 0 or count_files(out) != tree.files:
        notes.append(f"pydicom: rc {runs['pydicom'].rc}, {count_files(out)} of {tree.files} files written")
    reset_outputs(case_dir)
    return CaseResult(name, tree, runs, notes)


@dataclass
class ScaleResult:
    tree: Tree
    dryrun: Run
    touch: Run
    noop: Run
    notes: list[str]
    archive_dryrun: Run | None = None  # the same sessions, each also holding a small archive


TOUCH_WRAPPER = (
    "import sys\n"
    "import snakemake.executors.touch as touch\n"
    "touch.Executor.SLEEPING_TIME = 0  # it sleeps 0.1 s per job before touching; 25 min for 15,000 jobs\n"
    "from snakemake.cli import main\n"
    "main(sys.argv[1:])\n"
)


def planned_outputs(dryrun_log: str) -> list[str]:
    """Every output path of every job a dry run lists (its "output: a, b" lines)."""
    paths = []
    for line in dryrun_log.splitlines():
        line = line.strip()  # jobs of a group are indented further
        if line.startswith("output: "):
            paths += line[len("output: "):].split(", ")
    return paths


def fake_outputs(paths: list[str]) -> int:
    """Create every planned output empty, so `snakemake --touch` can mark it done (--touch creates nothing).

    A path whose name has no suffix is taken for a directory() output (session folders, scratch folders);
    the others (.json, .tsv, .html, .zip ...) become empty files.
    """
    for path in map(Path, paths):
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            path.mkdir(parents=True, exist_ok=True)
    return len(paths)


def measure_scale(tree: Tree, case_dir: Path, cores: int) -> ScaleResult:
    notes = []
    reset_outputs(case_dir)
    write_key(case_dir)
    n = len(tree.sessions)
    print(f"[scale] snakemake -n on {n} sessions ...", flush=True)
    dryrun = run_timed("dryrun", snakemake_cmd(case_dir, tree.root, cores, "-n"), case_dir / "runs" / "dryrun.log")
    if dryrun.rc != 0:
        notes.append(failure_note(f"dry run exited {dryrun.rc}", dryrun, "scale"))
    print(f"[scale] faking outputs and snakemake --touch (not timed as a target) ...", flush=True)
    faked = fake_outputs(planned_outputs(dryrun.log_text()))
    print(f"[scale] {faked} outputs created empty", flush=True)
    touch = run_timed(
        "touch",
        # Before each choice Snakemake stats the inputs of every ready job (job_selector -> update_input_sizes):
        # quadratic in the number of sessions (1,000 sessions: 65 s; 5,000: ~0.3 s per job). Subsampling the
        # ready jobs bounds that work (1,000 sessions: 18 s).
        [PYTHON, "-c", TOUCH_WRAPPER, "--touch", "--scheduler-subsample", "50",
         *snakemake_cmd(case_dir, tree.root, cores)[1:]],
        case_dir / "runs" / "touch.log",
    )
    if touch.rc != 0:
        notes.append(failure_note(f"--touch exited {touch.rc}", touch, "scale"))
    print(f"[scale] no-op rerun ...", flush=True)
    # Should it find work after all, it would run thousands of jobs: stop it well after the target.
    noop = run_timed("noop", snakemake_cmd(case_dir, tree.root, cores), case_dir / "runs" / "noop.log",
                     timeout=4 * TARGETS["noop_s"])
    if noop.rc != 0 or "Nothing to be done" not in noop.log_text():
        notes.append(failure_note(f"rerun did not report 'Nothing to be done' (rc {noop.rc})", noop, "scale"))
    print(f"[scale] one small zip into every session, snakemake -n again ...", flush=True)
    add_archive_to_every_session(tree)
    archive_dryrun = run_timed("dryrun-archives", snakemake_cmd(case_dir, tree.root, cores, "-n"),
                               case_dir / "runs" / "dryrun-archives.log")
    if archive_dryrun.rc != 0:
        notes.append(failure_note(f"dry run with archives exited {archive_dryrun.rc}", archive_dryrun, "scale"))
    return ScaleResult(tree, dryrun, touch, noop, notes, archive_dryrun)


def add_archive_to_every_session(tree: Tree) -> None:
    """Sessions with an archive have one job more (unpack_archives): the plan's worst case."""
    for session in tree.sessions:
        subject, ses = session.rsplit("_", 1)
        with zipfile.ZipFile(session_dir(tree.root, subject, ses) / "export.zip", "w") as z:
            z.writestr("f.txt", "x\n")


def snapshot_workflow(base: Path) -> Path:
    """Copy the workflow's files into `base/workflow`: edits made to the checkout during the benchmark then
    neither change the code being measured nor trigger reruns (Snakemake reruns jobs whose code changed)."""
    target = base / "workflow"
    target.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, target / part)
    return target


def preflight(base: Path, cores: int) -> tuple[Run, list[str]]:
    """Run the workflow once on 8 files; a failure here means the checkout is broken (or mid-edit)."""
    case_dir = base / "preflight"
    tree = build_small(case_dir / "input", 2, 1)
    write_key(case_dir)
    run = run_timed("preflight", snakemake_cmd(case_dir, tree.root, cores), case_dir / "runs" / "preflight.log")
    problems = workflow_ok(run, case_dir, tree)
    shutil.rmtree(case_dir)
    return run, problems


def remove_snakemake_records(workflow_dir: Path, prefix: str) -> int:
    """Delete .snakemake/{metadata,incomplete} records of paths under `prefix` (the benchmark's scratch)."""
    removed = 0
    for kind in ("metadata", "incomplete"):
        top = workflow_dir / ".snakemake" / kind
        if not top.is_dir():
            continue
        for folder, dirs, files in os.walk(top, topdown=False):
            rel = Path(folder).relative_to(top).parts
            if rel and not all(part.startswith("@") for part in rel):
                continue
            chunks = "".join(part[1:] for part in rel)
            for name in files:
                try:
                    path = base64.urlsafe_b64decode(chunks + name).decode()
                except Exception:
                    continue
                if path.startswith(prefix):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
            if rel and not os.listdir(folder):
                os.rmdir(folder)
    return removed


# ----------------------------------------------------------------------------------------------------------
# Reporting


def machine_info() -> dict[str, str]:
    model = "?"  # noqa
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    git = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{psutil.virtual_memory().total / 1024**3:.1f} GiB",
        "python": platform.python_version(),
        "versions": ", ".join(f"{p} {version(p)}" for p in ("snakemake", "dicognito", "pydicom")),
        "checkout": f"{git.stdout.strip()}"
        + (f" + uncommitted changes in {len(dirty.stdout.splitlines())} files" if dirty.stdout.strip() else ""),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def fmt_mb(n: int) -> str:
    return f"{n / MB:.0f}"


def verdict(ok: bool, valid: bool = True) -> str:
    if not valid:
        return "INVALID (a run failed)"
    return "PASS" if ok else "FAIL"


def case_table(case: CaseResult, cores: int) -> tuple[list[str], dict[str, float]]:
    tree, runs = case.tree, case.runs
    lines = [
        f"### {case.name} case: {tree.files} files, {tree.bytes / MB:.0f} MB, {len(tree.sessions)} sessions "
        f"(built in {tree.build_s:.1f} s)",
        "",
        "| run | seconds | files/s | MB/s | CPU s | CPU ms/file | peak RSS MB | load at start |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "workflow": f"workflow `snakemake --cores {cores}` (all stages)",
        "dicognito": "`python -m dicognito` (1 process)",
        "dicognito_par": f"`python -m dicognito` x{cores} processes (reference)",
        "pydicom": "pydicom read+save loop (1 process)",
    }
    rate = {}
    for key, label in labels.items():
        run = runs[key]
        rate[key] = tree.files / run.seconds
        rss = run.maxrss
        if key == "workflow" and run.sampler:
            rss = max([j.peak_rss for j in run.sampler.jobs.values()] or [0])
            label += " (heaviest job)"
        if run.rc != 0:
            label += f" **exit {run.rc}**"
        lines.append(
            f"| {label} | {run.seconds:.1f} | {rate[key]:.0f} | {tree.bytes / MB / run.seconds:.1f} | "
            f"{run.cpu_s:.1f} | {1000 * run.cpu_s / tree.files:.2f} | {fmt_mb(rss)} | {run.load:.2f} |"
        )
    lines.append("")
    if case.notes:
        lines += ["**A run failed (see the notes below): its numbers are not valid.**", ""]
    ratios = {
        "workflow/dicognito": rate["workflow"] / rate["dicognito"],
        "workflow/pydicom": rate["workflow"] / rate["pydicom"],
        f"dicognito x{cores}/dicognito": rate["dicognito_par"] / rate["dicognito"],
    }
    cpu_ratio = runs["workflow"].cpu_s / runs["dicognito"].cpu_s
    lines.append("Ratios (files/s): " + "; ".join(f"{k} = {v:.2f}" for k, v in ratios.items()) + ".")
    lines += ["", f"CPU per file, workflow/dicognito = {cpu_ratio:.2f}: even with all {cores} cores busy all the "
              f"time, the workflow could reach at most {cores / cpu_ratio:.2f}x single-process dicognito "
              "(CPU seconds barely depend on what else runs on the machine; wall seconds do)."]
    lines += ["", ceiling(case, cores, ratios[f"dicognito x{cores}/dicognito"])]
    lines.append("")
    return lines, ratios


def ceiling(case: CaseResult, cores: int, parallel_gain: float) -> str:
    """The best ratio a workflow could reach here: per-file work as cheap as dicognito's own, spread over
    the cores as well as separate dicognito processes spread, plus Snakemake's fixed start and end."""
    run, sampler = case.runs["workflow"], case.runs["workflow"].sampler
    dicognito_s = case.runs["dicognito"].seconds
    if sampler is None or not sampler.jobs:
        return ""
    start = sampler.first_job or 0.0
    end = run.seconds - max(j.last_seen for j in sampler.jobs.values())
    best = dicognito_s / (start + end + dicognito_s / parallel_gain)
    return (
        f"Ceiling: {cores} dicognito processes side by side reach {parallel_gain:.2f}x one process here, not "
        f"{cores}x (the cores share caches and memory bandwidth). A workflow doing per file exactly what "
        f"dicognito does, spread as well, would still pay Snakemake's start ({start:.1f} s to the first job) "
        f"and end ({end:.1f} s after the last): at most {best:.2f}x single-process dicognito. Anything above "
        f"that needs per-file work cheaper than dicognito's own while also checking every output."
    )


def job_table(case: CaseResult) -> list[str]:
    run = case.runs["workflow"]
    sampler = run.sampler
    if sampler is None:
        return []
    lines = [
        f"Jobs of the {case.name} workflow run (psutil every {sampler.interval} s, {sampler.samples} samples, "
        f"sampler CPU {sampler.cpu_s:.1f} s; RSS sums count pages shared by forked workers once per process):",
        "",
        "| rule | session | files | MB | job wall s (sampled) | peak RSS MB (tree) | largest process MB | processes |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {r: i for i, r in enumerate(SCRIPT_RULES)}
    jobs = sorted(sampler.jobs.values(), key=lambda j: (order.get(j.rule, 9), j.session))
    for job in jobs:
        files, size = case.tree.sessions.get(job.session, ("", 0))
        lines.append(
            f"| {job.rule} | {job.session} | {files} | {size / MB:.1f} | {job.last_seen - job.first_seen:.1f} | "
            f"{fmt_mb(job.peak_rss)} | {fmt_mb(job.peak_single)} | {job.peak_procs} |"
        )
    per_rule: dict[str, float] = {}
    for job in jobs:
        if job.rule != "?":  # a job that ended before its command line could be read
            per_rule[job.rule] = per_rule.get(job.rule, 0) + job.last_seen - job.first_seen
    last = max((j.last_seen for j in jobs), default=0)
    lines += [
        "",
        f"Where the {run.seconds:.1f} s went: first job seen after {sampler.first_job or 0:.1f} s "
        f"(start-up, parsing, discovery, DAG); "
        + ", ".join(f"{r} {s:.1f} s" for r, s in per_rule.items())
        + f" (job wall times, summed); after the last job {run.seconds - last:.1f} s. "
        f"Snakemake's own process peaked at {fmt_mb(sampler.snakemake_peak)} MB.",
        "",
    ]
    return lines


def report(info: dict, mode: str, cores: int, cases: list[CaseResult], scale: ScaleResult | None,
           total_s: float) -> str:
    lines = [f"# Workflow benchmark ({mode})", "", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines.append("")
    ratios = {}
    for case in cases:
        table, ratios[case.name] = case_table(case, cores)
        lines += table + job_table(case)
        lines += [f"- NOTE: {n}" for n in case.notes] + ([""] if case.notes else [])
    if scale:
        tree = scale.tree
        lines += [
            f"### scale case: {len(tree.sessions)} sessions x {tree.files // len(tree.sessions)} tiny files "
            f"= {tree.files} files (built in {tree.build_s:.1f} s)",
            "",
            "| run | seconds | CPU s | peak RSS MB (snakemake) | load at start |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, run in ((f"`snakemake -n` (nothing done yet)", scale.dryrun),
                           ("`snakemake --touch` to fake a finished run (set-up, not a target)", scale.touch),
                           (f"no-op rerun `snakemake --cores {cores}` (\"Nothing to be done\")", scale.noop),
            ("`snakemake -n` after a small zip was added to every session (not a target: the worst case, "
             "3 jobs per session)", scale.archive_dryrun)):
            if run is not None:
                lines.append(f"| {label} | {run.seconds:.1f} | {run.cpu_s:.1f} | {fmt_mb(run.maxrss)} | "
                             f"{run.load:.2f} |")
        lines += [
            "",
            "How the no-op rerun is set up: a real run of this many sessions would take hours (each job starts "
            "Python), so every output the dry run lists is created empty (a name without a suffix as a folder) and "
            "`snakemake --touch` marks them done: it runs no job but records Snakemake's metadata "
            "(params incl. the session fingerprint, code, input) exactly as a finished job would, and deletes "
            "temp() outputs after their consumers. The timed rerun then does all the checks a real no-op "
            "rerun does (discovery and fingerprint of every input file, DAG, mtimes, metadata). "
            "The touch executor's 0.1 s sleep per job is set to 0 in a wrapper (`TOUCH_WRAPPER`), and the touch "
            "run uses `--scheduler-subsample 50` (without it Snakemake stats every ready job's inputs before "
            "each scheduling step: quadratic, ~0.3 s per job at 5,000 sessions).",
            "",
        ]
        lines += [f"- NOTE: {n}" for n in scale.notes] + ([""] if scale.notes else [])

    lines += ["### Targets", "", "| target | measured | result |", "|---|---|---|"]
    by_name = {c.name: c for c in cases}
    for name, key in (("small", "small_ratio"), ("large", "large_ratio")):
        if name in by_name:
            got = ratios[name]["workflow/dicognito"]
            ok = got >= TARGETS[key]
            lines.append(f"| {name}: workflow >= {TARGETS[key]}x dicognito files/s | {got:.2f}x | "
                         f"{verdict(ok, not by_name[name].notes)} |")
    job_peaks = [
        (j.peak_rss, c.name, j.rule, j.session)
        for c in cases if c.runs["workflow"].sampler
        for j in c.runs["workflow"].sampler.jobs.values()
    ]
    if job_peaks:
        peak, case, rule, session = max(job_peaks)
        ok = peak <= TARGETS["job_rss_mb"] * MB
        lines.append(f"| peak RSS of any job <= {TARGETS['job_rss_mb']} MB | {fmt_mb(peak)} MB ({case}: {rule} "
                     f"{session}) | {verdict(ok, not any(c.notes for c in cases))} |")
    if scale:
        n = len(scale.tree.sessions)
        full = "" if n >= 5000 else f" (only {n} sessions: --quick)"
        ok = scale.dryrun.seconds <= TARGETS["dryrun_s"]
        lines.append(f"| 5,000-session `snakemake -n` <= {TARGETS['dryrun_s']:.0f} s{full} | "
                     f"{scale.dryrun.seconds:.1f} s | {verdict(ok, scale.dryrun.rc == 0)} |")
        ok = scale.noop.seconds <= TARGETS["noop_s"]
        lines.append(f"| no-op rerun <= {TARGETS['noop_s']:.0f} s{full} | {scale.noop.seconds:.1f} s | "
                     f"{verdict(ok, not scale.notes)} |")
    lines += ["", f"Whole benchmark: {total_s:.0f} s.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Profile


def call_with(func, **kwargs):
    """Call `func` with those of `kwargs` it takes (the package's signatures change while it is developed)."""
    params = inspect.signature(func).parameters
    return func(**{k: v for k, v in kwargs.items() if k in params})


def workflow_steps(files: list[Path], folder: Path, base: Path) -> list[tuple[str, callable]]:
    """In-process steps over `files` of one session: plain pydicom, plain dicognito, the workflow's stages."""
    sys.path.insert(0, str(ROOT))
    import dicom_deid.anonymize as anonymize_module
    from dicognito.anonymizer import Anonymizer

    from dicom_deid.session import anonymize_sources, results_to_json
    from dicom_deid.checks import verify_session

    seed = SEED * 2
    policy = anonymize_module.Policy(seed=seed) if hasattr(anonymize_module, "Policy") else seed
    staged = {"sources": [(p.relative_to(folder).as_posix(), str(p)) for p in files], "problems": []}
    results: list = []
    anon_dir = base / "anonymized"

    def read_only() -> None:
        for path in files:
            pydicom.dcmread(path)

    def pydicom_loop() -> None:
        out = Path(tempfile.mkdtemp(dir=base))
        for i, path in enumerate(files):
            pydicom.dcmread(path).save_as(out / f"{i}.dcm")

    def dicognito_loop() -> None:
        out = Path(tempfile.mkdtemp(dir=base))
        anonymizer = Anonymizer(id_prefix="", id_suffix="", seed=SEED)
        for i, path in enumerate(files):
            ds = pydicom.dcmread(path)
            anonymizer.anonymize(ds)
            ds.save_as(out / f"{i}.dcm")

    def anonymize() -> None:
        shutil.rmtree(anon_dir, ignore_errors=True)
        results[:] = call_with(anonymize_sources, staged=staged, out_dir=anon_dir, policy=policy, seed=seed,
                               workers=1, session="BENCH", crosswalk_file=None)

    def verify() -> None:
        checks = call_with(verify_session, staged=staged, results=results_to_json(results), out_dir=anon_dir,
                           workers=1)
        failed = {k: len(v["failures"]) for k, v in checks.items() if v["failures"]}
        if failed:
            print(f"verify_session failures: {failed}")

    return [
        ("pydicom dcmread only (lazy: values not converted)", read_only),
        ("pydicom read+save", pydicom_loop),
        ("dicognito API: read+anonymize+save", dicognito_loop),
        ("workflow anonymize_sources (1 worker, in-process)", anonymize),
        ("workflow verify_session (1 worker, in-process)", verify),
    ]


def cost_table(title: str, files: list[Path], folder: Path, base: Path) -> str:
    lines = [f"{title}: {len(files)} files, {sum(p.stat().st_size for p in files) / MB:.1f} MB, one process, "
             "no profiler", "", "| step | ms/file | files/s | MB/s |", "|---|---:|---:|---:|"]
    size = sum(p.stat().st_size for p in files) / MB
    for label, call in workflow_steps(files, folder, base):
        started = time.perf_counter()
        call()
        elapsed = time.perf_counter() - started
        lines.append(f"| {label} | {1000 * elapsed / len(files):.2f} | {len(files) / elapsed:.0f} | "
                     f"{size / elapsed:.0f} |")
    return "\n".join(lines) + "\n"


def profile(n_files: int, scratch: Path, out: Path | None, top: int = 25) -> str:
    """Per-file costs in one process (small MR and 512x512 CT files), then cProfile of the workflow's
    anonymize and verify functions over n_files MR_small copies of one session."""
    base = Path(tempfile.mkdtemp(prefix="dicom-deid-profile-", dir=scratch))
    try:
        texts = []
        tree = build_small(base / "small", n_files, 1)
        folder = session_dir(tree.root, "BENCH01", "01")
        small_files = sorted(folder.rglob("*.dcm"))
        texts.append(cost_table("MR_small copies", small_files, folder, base))
        large = build_large(base / "large", 60, 1, 96)  # one 48 MB multiframe + ~22 CT slices
        large_folder = session_dir(large.root, "BENCH11", "01")
        ct_files = sorted(large_folder.rglob("CT*.dcm"))
        texts.append(cost_table("512x512 CT slices (0.5 MB)", ct_files, large_folder, base))
        mf_files = sorted(large_folder.rglob("MF*.dcm")) * 3
        texts.append(cost_table("one 96-frame enhanced CT (48 MB), 3 times", mf_files, large_folder, base))

        steps = dict(workflow_steps(small_files, folder, base))
        for label in ("workflow anonymize_sources (1 worker, in-process)", "workflow verify_session (1 worker, "
                      "in-process)"):
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.runcall(steps[label])
            elapsed = time.perf_counter() - started
            for sort in ("tottime", "cumulative"):
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(sort).print_stats(top)
                texts.append(f"===== {label}: {len(small_files)} MR_small files, {elapsed:.2f} s under cProfile, "
                             f"sorted by {sort}\n{buffer.getvalue()}")
        text = "\n".join(texts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return text


# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.md",
                        help="markdown report (default: bench/results/latest.md)")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the temporary benchmark folder is made (default: the system temp folder)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores and parallel dicognito processes")
    parser.add_argument("--cases", default="small,large,scale", help="comma-separated subset of small,large,scale")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and, with --live, "
                        "Snakemake's records of it)")
    parser.add_argument("--live", action="store_true", help="run snakemake in the checkout itself, not in a "
                        "snapshot of it (edits made meanwhile then change what is measured)")
    parser.add_argument("--profile-files", type=int, metavar="N",
                        help="only profile anonymize/verify in-process over N files (written next to --out)")
    parser.add_argument("--workflow-config", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more --config entries for the workflow runs, e.g. profile=basic")
    args = parser.parse_args(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    EXTRA_CONFIG[:] = args.workflow_config

    if args.profile_files:
        print(profile(args.profile_files, args.scratch, args.out.with_name("profile.txt")))
        return 0

    global WORKFLOW_DIR, FAILED_LOGS
    FAILED_LOGS = args.out.parent
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    wanted = set(args.cases.split(","))
    started = time.perf_counter()
    info = machine_info()
    base = Path(tempfile.mkdtemp(prefix="dicom-deid-bench-", dir=args.scratch)).resolve()
    print(f"benchmark ({mode}) in {base}", flush=True)
    cases: list[CaseResult] = []
    scale = None
    try:
        for attempt in range(1, 4):
            if not args.live:
                shutil.rmtree(base / "workflow", ignore_errors=True)
                WORKFLOW_DIR = snapshot_workflow(base)
            run, problems = preflight(base, args.cores)
            if not problems:
                break
            print(f"preflight {attempt} failed (checkout mid-edit?): {'; '.join(problems)}", flush=True)
            if attempt == 3:
                print(failure_note("preflight", run, "preflight"))
                return 1
            time.sleep(20)
        info["workflow code"] = (
            f"{'the checkout itself (--live)' if args.live else 'snapshot of the checkout taken at the start'}; "
            f"preflight run on 8 files {run.seconds:.1f} s"
        )
        if "small" in wanted:
            tree = build_small(base / "small" / "input", sizes["small_per_session"], sizes["big_factor"])
            cases.append(measure_case("small", tree, base / "small", args.cores))
            shutil.rmtree(tree.root)
        if "large" in wanted:
            tree = build_large(base / "large" / "input", sizes["large_mb"], sizes["large_sessions"],
                               sizes["mf_frames"])
            cases.append(measure_case("large", tree, base / "large", args.cores))
            shutil.rmtree(tree.root)
        if "scale" in wanted:
            print("[scale] building the tree ...", flush=True)
            tree = build_scale(base / "scale" / "input", sizes["scale_sessions"], sizes["scale_files"])
            scale = measure_scale(tree, base / "scale", args.cores)
    finally:
        if args.live and not args.keep:
            removed = remove_snakemake_records(ROOT, str(base))
            print(f"removed {removed} Snakemake records of {base} from {ROOT / '.snakemake'}", flush=True)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    info["load average (end)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(info, mode, args.cores, cases, scale, time.perf_counter() - started)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
