"""The anonymize stage: de-identify and check a session's staged files in parallel worker processes.

Called by scripts/anonymize_session.py; needs no Snakemake. The other stages live in stage.py (unpack) and
publish.py (verify and publish), which import neither pydicom nor dicognito, so their jobs start fast.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from dicom_deid.anonymize import FileResult, Policy, SessionAnonymizer
from dicom_deid.crosswalk import append_rows
from dicom_deid.errors import session_error

log = logging.getLogger(__name__)


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


def _size(job: tuple[str, str, str]) -> int:
    try:
        return os.stat(job[1]).st_size
    except OSError:  # reported as the file is processed
        return 0


def anonymize_sources(
    staged: dict,
    out_dir: Path,
    policy: Policy,
    workers: int,
    session: str,
    crosswalk_file: Path | None = None,
) -> list[FileResult]:
    """Anonymize and check every staged source into `out_dir`; raise SessionError listing every bad file."""
    # Largest first: a worker left alone with a 50 MB multi-frame file at the end idles the others.
    jobs = sorted(((rel, src, str(out_dir / rel)) for rel, src in staged["sources"]), key=_size, reverse=True)
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
    results.sort(key=lambda r: r.relpath)  # the sources' order: results do not depend on the workers
    problems = list(staged["problems"]) + [r.reason for r in results if r.status == "bad"]
    if problems:
        raise session_error(session, problems)
    if crosswalk_file is not None:
        added = append_rows(crosswalk_file, session, {r.crosswalk for r in results if r.crosswalk})
        log.info("%s: %d new row(s) in the crosswalk", session, added)
        for result in results:
            result.crosswalk = None  # identifying: never into the results file
    return results


def results_to_json(results: list[FileResult]) -> list[dict]:
    return [asdict(r) for r in results]
