"""`--profile-files N`: per-file costs in one process, then cProfile of the workflow's anonymize stage and
the publish stage's session check, over N copies of MR_small in one session; then, over about N files of the
mixed case, where one worker's time goes, step by step, beside one dicognito process on the same files."""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pydicom
from dicognito.anonymizer import Anonymizer

from bench.measure import SEED
from bench.trees import MB, build_large, build_mixed, build_small
from dicom_deid.dicognito_adapter import DicognitoAnonymizer
from dicom_deid.paths import session_input_dir
from dicom_deid.records import Outcome, default_policy
from dicom_deid.stages import anonymize as anonymize_stage
from dicom_deid.stages.anonymize import anonymize_session
from dicom_deid.stages.unpack import list_sources
from dicom_deid.verify.files import Facts
from dicom_deid.verify.session import check_session

ANONYMIZE = "workflow: anonymize stage (1 worker, in-process)"
CHECK = "workflow: publish stage's session check"
POLICY = default_policy(SEED * 2)  # as a run with the default configuration


def steps(session_dir: Path, files: list[Path], scratch: Path) -> dict[str, callable]:
    """Plain pydicom, the dicognito API, and the workflow's stages over the same files."""
    sources = list_sources(session_dir)
    sources.files = [(rel, src) for rel, src in sources.files if Path(src) in set(files)]
    out = scratch / "anonymized"
    results = []

    def pydicom_read_save() -> None:
        for i, path in enumerate(files):
            pydicom.dcmread(path).save_as(scratch / f"{i}.dcm")

    def dicognito_api() -> None:
        anonymizer = Anonymizer(seed=SEED)
        for i, path in enumerate(files):
            ds = pydicom.dcmread(path)
            anonymizer.anonymize(ds)
            ds.save_as(scratch / f"{i}.dcm")

    def anonymize() -> None:
        shutil.rmtree(out, ignore_errors=True)
        results[:] = anonymize_session(sources, out, POLICY, workers=1, session="BENCH")

    def check() -> None:
        failed = {name: c.failures for name, c in check_session(sources, results, out).items() if c.failures}
        if failed:
            print(f"session check failures: {failed}")

    return {
        "pydicom dcmread only": lambda: [pydicom.dcmread(path) for path in files],
        "pydicom read+save": pydicom_read_save,
        "dicognito API: read+anonymize+save": dicognito_api,
        ANONYMIZE: anonymize,
        CHECK: check,
    }


def cost_table(title: str, session_dir: Path, files: list[Path], scratch: Path, rounds: int = 3) -> str:
    size = sum(path.stat().st_size for path in files) / MB
    lines = [
        f"{title}: {len(files)} files, {size:.1f} MB, one process, no profiler, the fastest of {rounds} rounds",
        "",
        "| step | ms/file | files/s | MB/s |",
        "|---|---:|---:|---:|",
    ]
    # Rounds interleaved, the fastest of each step counts: a single pass over one 48 MB file measured mostly
    # whether its pages were cached and its buffers allocated yet (the worker at 2.3x dicognito once, 1.1x warm).
    calls = steps(session_dir, files, scratch)
    fastest = dict.fromkeys(calls, float("inf"))
    for _ in range(rounds):
        for label, call in calls.items():  # in order: the session check reads the anonymize step's results
            started = time.perf_counter()
            call()
            fastest[label] = min(fastest[label], time.perf_counter() - started)
    for label, elapsed in fastest.items():
        lines.append(
            f"| {label} | {1000 * elapsed / len(files):.2f} | {len(files) / elapsed:.0f} | {size / elapsed:.0f} |"
        )
    return "\n".join(lines) + "\n"


# What FileDeidentifier.process_file calls, by the name it looks up in the stage's module, and what for.
WORKER_STEPS = {
    "read_instance": "read the original (pydicom)",
    "original_facts": "facts of the original, for the check",
    "known_values": "known values, for the scrub",
    "apply_private_policy": "private elements: keep the safe ones",
    "replacements": "pair each known value with its pseudonym",
    "scrub": "scrub known values out of every other element",
    "check_output": "parse the written bytes back, check and scan them",
}


def worker_steps(files: list[Path], scratch: Path, rounds: int = 3) -> str:
    """One worker over `files` with each step timed, beside the dicognito API over the same files (best of
    `rounds`, interleaved: this machine's speed drifts), as ms per file and as a multiple of dicognito's."""
    spent: Counter = Counter()

    def timed(label: str, call):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return wrapper

    patches = [
        mock.patch.object(anonymize_stage, name, timed(name, getattr(anonymize_stage, name))) for name in WORKER_STEPS
    ]
    patches.append(
        mock.patch.object(DicognitoAnonymizer, "anonymize", timed("dicognito", DicognitoAnonymizer.anonymize))
    )
    patches.append(mock.patch.object(pydicom.Dataset, "save_as", timed("save_as", pydicom.Dataset.save_as)))

    settings = pydicom.config.settings
    validation = settings.reading_validation_mode, settings.writing_validation_mode  # as dicognito runs

    def dicognito_api() -> None:
        settings.reading_validation_mode, settings.writing_validation_mode = validation
        anonymizer = Anonymizer(seed=SEED)
        for path in files:
            dataset = pydicom.dcmread(path)
            anonymizer.anonymize(dataset)
            dataset.save_as(scratch / "dicognito.dcm")

    def worker() -> Counter:
        spent.clear()
        anonymize_stage.skip_value_validation()  # as in the workflow's worker processes
        deidentifier = anonymize_stage.FileDeidentifier(POLICY)
        for index, path in enumerate(files):
            result = deidentifier.process_file(path, scratch / "worker" / f"{index}.dcm", path.name)
            if result.outcome is not Outcome.WRITTEN or any(result.failures.values()):
                raise RuntimeError(f"{path}: {result.outcome.name} {result.reason} {result.failures}")
        return Counter(spent)

    # What the check costs the worker at the margin: its facts convert elements dicognito would convert anyway,
    # so the steps' own times overstate it. Measured as the same worker with both check steps doing nothing.
    no_facts = Facts(transfer_syntax="", pixels={})
    without_check = [
        mock.patch.object(anonymize_stage, "original_facts", lambda dataset, policy=None: no_facts),
        mock.patch.object(anonymize_stage, "check_output", lambda *args, **kwargs: {}),
    ]

    best_dicognito = best_worker = best_unchecked = float("inf")
    steps_of_best: Counter = Counter()
    for _ in range(rounds):
        started = time.process_time()
        dicognito_api()
        best_dicognito = min(best_dicognito, time.process_time() - started)
        started = time.process_time()
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            steps_now = worker()
        elapsed = time.process_time() - started
        if elapsed < best_worker:
            best_worker, steps_of_best = elapsed, steps_now
        started = time.process_time()
        with contextlib.ExitStack() as stack:
            for patch in without_check:
                stack.enter_context(patch)
            worker()
        best_unchecked = min(best_unchecked, time.process_time() - started)
    steps_of_best["rest: write the file, results, timers"] = best_worker - sum(steps_of_best.values())
    labels = {**WORKER_STEPS, "dicognito": "dicognito's handlers (fast path)", "save_as": "write (pydicom encodes)"}
    per_file = 1000 / len(files)
    lines = [
        f"Worker steps over {len(files)} mixed-case files in one process, CPU, best of {rounds} runs"
        " interleaved with dicognito's",
        "",
        "| step | ms/file | share of the worker | x dicognito's CPU per file |",
        "|---|---:|---:|---:|",
        f"| dicognito API: read + anonymize + save | {best_dicognito * per_file:.2f} | | 1.00 |",
        f"| **the worker, all steps** | {best_worker * per_file:.2f} | 100% | {best_worker / best_dicognito:.2f} |",
        f"| the worker without its check (the two check steps below do nothing) | {best_unchecked * per_file:.2f} |"
        f" {best_unchecked / best_worker:.0%} | {best_unchecked / best_dicognito:.2f} |",
    ]
    for name, seconds in steps_of_best.most_common():
        lines.append(
            f"| {labels.get(name, name)} | {seconds * per_file:.2f} | {seconds / best_worker:.0%} |"
            f" {seconds / best_dicognito:.2f} |"
        )
    return "\n".join(lines) + "\n"


def mixed_files(base: Path, count: int) -> list[Path]:
    """About `count` of the mixed case's instances, every k-th of them, so each kind keeps its share."""
    tree = build_mixed(base / "mixed" / "input", base / "mixed" / "plain", 2000)
    files = sorted(path for path in tree.plain.rglob("*") if path.is_file() and not path.name.endswith(".txt"))
    return files[:: max(1, round(len(files) / count))]


def profile(n_files: int, scratch: Path, top: int = 25) -> str:
    base = Path(tempfile.mkdtemp(prefix="dicom-deid-profile-", dir=scratch))
    try:
        small = session_input_dir(build_small(base / "small", n_files, 1).root, "BENCH01", "01")
        large = session_input_dir(build_large(base / "large", 60, 1, 96).root, "BENCH11", "01")
        small_files = sorted(p for p in small.rglob("*.dcm"))
        texts = [
            worker_steps(mixed_files(base, n_files), base),
            cost_table("MR_small copies", small, small_files, base),
            cost_table("512x512 CT slices (0.5 MB)", large, sorted(large.rglob("CT/*.dcm")), base),
            cost_table("one 96-frame enhanced CT (48 MB)", large, sorted(large.rglob("MF/*.dcm")), base),
        ]
        calls = steps(small, small_files, base)
        for label in (ANONYMIZE, CHECK):
            profiler = cProfile.Profile()
            profiler.runcall(calls[label])
            for sort in ("tottime", "cumulative"):
                buffer = io.StringIO()
                pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(sort).print_stats(top)
                texts.append(f"===== {label}: {len(small_files)} MR_small files, sorted by {sort}\n{buffer.getvalue()}")
        return "\n".join(texts)
    finally:
        shutil.rmtree(base, ignore_errors=True)
