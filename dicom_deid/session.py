"""Per-session stages: stage sources (unpacking archives), anonymize and check them in parallel, publish.

Each function is what one Snakemake rule runs; none needs Snakemake to be called.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from dicom_deid.anonymize import FileResult, Policy, SessionAnonymizer
from dicom_deid.archives import ArchiveError, Limits, unpack_archive
from dicom_deid.crosswalk import append_rows
from dicom_deid.layout import archive_destination, archive_stem, walk_files
from dicom_deid.publish import move_into_place, write_zip
from dicom_deid.report import session_report
from dicom_deid.verify import verify_session

log = logging.getLogger(__name__)


class SessionError(Exception):
    """A session that cannot be de-identified; the message lists every bad file and its reason."""


def session_error(session: str, problems: list[str], what: str = "bad file(s)") -> SessionError:
    lines = "\n".join(f"  - {p}" for p in problems)
    return SessionError(f"session {session}: {len(problems)} {what}, nothing written:\n{lines}")


def stage_sources(session_dir: Path, unpack_dir: Path, limits: Limits) -> dict:
    """Unpack every archive of a session into `unpack_dir` and list every file to de-identify.

    Returns {"sources": [[output relpath, source path], ...], "problems": [...]}; sorted, so every later
    stage sees the files in the same order. Archive problems are collected, not raised, so that the
    anonymize stage can report them together with bad DICOM files.
    """
    sources: dict[str, str] = {}
    origins: dict[str, str] = {}  # output relpath -> where it came from, named relative to the session
    problems: list[str] = []

    def add(relpath: str, source: Path, origin: str) -> None:
        if relpath in sources:
            first, second = sorted([origins[relpath], origin])
            problems.append(f"{relpath}: both {first} and {second} map to this output path")
        else:
            sources[relpath], origins[relpath] = str(source), origin

    unpack_dir.mkdir(parents=True, exist_ok=True)
    for relpath, _ in sorted(walk_files(session_dir)):
        source = session_dir / relpath
        if archive_stem(source.name) is None:
            add(relpath, source, f"file {relpath}")
            continue
        destination = archive_destination(relpath)
        try:
            members = unpack_archive(source, relpath, unpack_dir / destination, limits)
        except ArchiveError as error:
            problems.append(str(error))
            continue
        for member in members:
            add(f"{destination}/{member}", unpack_dir / destination / member, f"member {member} of {relpath}")
    return {"sources": sorted(sources.items()), "problems": problems}


_worker: SessionAnonymizer | None = None
_crosswalk = False
_parent = 0


def _start_worker(policy: Policy, crosswalk: bool) -> None:
    global _worker, _crosswalk, _parent
    _worker, _crosswalk, _parent = SessionAnonymizer(policy), crosswalk, os.getppid()


def _anonymize_one(job: tuple[str, str, str]) -> FileResult:
    if os.getppid() != _parent:  # the job was killed: stop, rather than write into its rerun's folder
        os._exit(1)
    relpath, source, target = job
    return _worker.process_file(Path(source), Path(target), relpath, crosswalk=_crosswalk)


def _results(jobs: list, policy: Policy, crosswalk: bool, workers: int):
    if workers <= 1 or len(jobs) < 2:
        _start_worker(policy, crosswalk)
        yield from map(_anonymize_one, jobs)
        return
    # One process per thread, each building its seeded Anonymizer once; map keeps the input order.
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker, initargs=(policy, crosswalk)) as pool:
        yield from pool.map(_anonymize_one, jobs, chunksize=max(1, min(32, len(jobs) // (workers * 8))))


def anonymize_sources(
    staged: dict,
    out_dir: Path,
    policy: Policy,
    workers: int,
    session: str,
    crosswalk_file: Path | None = None,
) -> list[FileResult]:
    """Anonymize and check every staged source into `out_dir`; raise SessionError listing every bad file."""
    jobs = [(rel, src, str(out_dir / rel)) for rel, src in staged["sources"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[FileResult] = []
    started = last_report = time.monotonic()
    log.info("%s: %d files to de-identify with %d worker(s)", session, len(jobs), workers)
    for result in _results(jobs, policy, crosswalk_file is not None, workers):
        results.append(result)
        now = time.monotonic()
        if now - last_report >= 10 or len(results) == len(jobs):
            rate = len(results) / max(now - started, 1e-9)
            log.info("%s: %d/%d files done, %.0f files/s", session, len(results), len(jobs), rate)
            last_report = now
    problems = list(staged["problems"]) + [r.reason for r in results if r.status == "bad"]
    if problems:
        raise session_error(session, problems)
    if crosswalk_file is not None:
        added = append_rows(crosswalk_file, session, {r.crosswalk for r in results if r.crosswalk})
        log.info("%s: %d new row(s) in the crosswalk", session, added)
        for result in results:
            result.crosswalk = None  # identifying: never into the results file
    return results


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    partial.replace(path)


def results_to_json(results: list[FileResult]) -> list[dict]:
    return [asdict(r) for r in results]


def publish_verified(
    staged: dict,
    results: list[dict],
    staged_dir: Path,
    final: Path,
    report_path: Path,
    session: str,
    settings: dict,
) -> dict:
    """Gather the checks; if every one passed, put the session in place (folder or zip) and write the report."""
    checks = verify_session(staged, results, staged_dir)
    report = session_report(session, staged, results, checks, settings)
    if report["verification"] != "pass":
        failures = [f"[{name}] {item}" for name, check in checks.items() for item in check["failures"]]
        raise session_error(session, failures, "verification failure(s)")
    log.info("%s: every check passed: %s", session, ", ".join(checks))
    if final.suffix == ".zip":
        write_zip(staged_dir, [r["relpath"] for r in results if r["status"] == "written"], final)
    else:
        move_into_place(staged_dir, final)
    write_json(report_path, report)
    return report
