"""Stage 2, anonymize: de-identify a session's files in parallel worker processes, and check each file as written.

Rule `anonymize_session`. Each worker reads a file, takes the facts verification needs from the original,
anonymizes it (dicognito_adapter), writes it to scratch atomically, and hands the written file to the verifier
(verify.py) while it is still in the page cache. Nothing reaches the output here: stage 3 (publish) does that.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import logging
import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path, PurePosixPath

import pydicom
from pydicom.dataelem import RawDataElement

from dicom_deid import tags
from dicom_deid.basic_profile import BasicProfile, dates_moved, record_method
from dicom_deid.crosswalk import append_rows, offset_in_days
from dicom_deid.dicognito_adapter import (
    DicognitoAnonymizer,
    date_offset_days,
    original_patient_id,
    pseudonymous_uid,
)
from dicom_deid.dicomfile import (
    LARGE_VALUE,
    PIXEL_TAGS,
    BadDicom,
    DicomDir,
    NotDicom,
    burned_in_text_risk,
    read_instance,
)
from dicom_deid.job import session_error
from dicom_deid.keyfile import patient_token, study_token
from dicom_deid.records import (
    FAIL_SESSION,
    SKIP_FILE,
    FileResult,
    Outcome,
    Policy,
    Sources,
    bad_files,
    split_message,
)
from dicom_deid.safe_private import EVERY_PRIVATE, load_safe_private, walk_private
from dicom_deid.scrub import NameScrubber, known_values, replacements, scrub, scrub_path
from dicom_deid.verify.files import check_output, masked_path, original_facts, path_leftovers

log = logging.getLogger(__name__)


def replace_file_framing(dataset: pydicom.Dataset) -> None:
    """Give the dataset the framing of the file about to be written: a file meta of its own (tags.FILE_META_WRITTEN:
    SOP Class and Instance, which some real files lack in the meta and dicognito remaps in both, and the transfer
    syntax), a zeroed preamble and no trailing padding. The original's AE titles (nibabel's Siemens T1 map names
    its sending PACS), its private file meta information, and what its writer put into the preamble and the
    padding (pydicom's CT_small: a TIFF header there, its directory here, both pointing into the original file)
    stay behind. pydicom adds its own implementation UID and version as it writes."""
    original = dataset.file_meta
    meta = pydicom.dataset.FileMetaDataset()
    sop_class = original.get("MediaStorageSOPClassUID") or dataset.get("SOPClassUID")
    sop_instance = dataset.get("SOPInstanceUID") or original.get("MediaStorageSOPInstanceUID")
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    if sop_instance:
        meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = original.TransferSyntaxUID
    dataset.file_meta = meta
    dataset.preamble = bytes(128)
    dataset.pop(tags.TRAILING_PADDING, None)


def _unwritable_reason(dataset: pydicom.Dataset, error: Exception) -> str:
    """Why pydicom refused to write a file. Most often the dataset is a fragment, not an instance: a standard
    file must name its SOP Class and Instance."""
    missing = [keyword for keyword in ("SOPClassUID", "SOPInstanceUID") if not dataset.get(keyword)]
    if missing:
        return f"has no {' and no '.join(missing)}: not a DICOM instance, cannot be written as a DICOM file"
    return f"cannot be written as a DICOM file ({type(error).__name__})"


def stream_large_pixel_data(dataset: pydicom.Dataset) -> None:
    """Hand pydicom each pixel value above LARGE_VALUE as a buffer over the same bytes (a buffered value), which it
    writes from directly instead of copying it into a write buffer first."""
    for tag in PIXEL_TAGS:
        element = dataset.get_item(tag)
        if element is None or not isinstance(element.value, bytes) or len(element.value) <= LARGE_VALUE:
            continue
        if isinstance(element, RawDataElement) or len(element.value) % 2 or element.VR not in ("OB", "OW", "OF", "OD"):
            continue  # not decoded (implicit VR: its VR unresolved), or odd: the pad byte would not be counted
        element.value = io.BytesIO(element.value)


def apply_private_policy(dataset: pydicom.Dataset, private_tags: str) -> tuple[int, int]:
    """Keep every private element, only the safe ones (data/safe_private.tsv), or none; (kept, removed)."""
    if private_tags == "keep":
        return sum(1 for _ in walk_private(dataset, EVERY_PRIVATE)), 0
    if private_tags == "remove":
        removed = sum(1 for _, _, kept in walk_private(dataset, EVERY_PRIVATE) if kept)
        dataset.remove_private_tags()
        return 0, removed
    decisions = list(walk_private(dataset, load_safe_private()))  # decide first: deleting while walking skips
    for owner, tag, keep in decisions:
        if not keep:
            del owner[tag]
    kept = sum(keep for _, _, keep in decisions)
    return kept, len(decisions) - kept


def _renamed(target: Path, relpath: str, new_relpath: str) -> Path:
    """`target` (<output folder>/<relpath>) for the file's new path below the same folder."""
    return target.parents[len(Path(relpath).parts) - 1] / new_relpath


def _partial_path(target: Path) -> Path:
    """A hidden name beside `target` to write it under first. Per process, so a leftover worker of a killed job
    never renames another's half-written file; after a digest of the target's name, not the name itself, which
    may already be as long as the file system allows (255 bytes)."""
    digest = hashlib.blake2b(os.fsencode(target.name), digest_size=8).hexdigest()
    return target.with_name(f".{digest}.{os.getpid()}.partial")


def _write_atomically(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(target)
    partial.write_bytes(content)
    try:
        os.replace(partial, target)
    except OSError:
        partial.unlink(missing_ok=True)  # never left among the files to publish
        raise


def _name_too_long(out_relpath: str) -> str:
    """Why a file the file system would not name is bad: a pseudonym longer than the value it replaced can take a
    file or folder name past the limit."""
    longest = max(len(os.fsencode(part)) for part in PurePosixPath(out_relpath).parts)
    return f"its output name would be {longest} bytes, longer than the file system allows"


class FileDeidentifier:
    """De-identifies one file after another with one seeded anonymizer (one per worker process)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.dicognito = DicognitoAnonymizer(policy.seed, policy.date_shift, policy.keep, policy.fast_path)
        self.basic = None
        self.named: set[str] = set()  # the known values whose pairs this worker has handed on (name_pairs)
        if policy.profile == "basic":
            self.basic = BasicProfile(policy.basic_options, partial(pseudonymous_uid, policy.seed), policy.keep)

    def anonymize(self, dataset: pydicom.Dataset) -> FileResult:
        """Apply the policy in place; the result holds what was repaired, scrubbed, kept and removed."""
        return self._anonymize(dataset)[0]

    def _anonymize(self, dataset: pydicom.Dataset) -> tuple[FileResult, dict[str, tuple[str, str]]]:
        """anonymize(), and each known original value paired with what replaced it (scrub.replacements)."""
        known = known_values(dataset, self.policy.keep)  # before dicognito replaces them
        moved = dates_moved(dataset, self.policy.keep)
        originals = self.basic.to_keep(dataset) if self.basic is not None else {}
        day = study_day(self.policy.seed, dataset)  # before dicognito moves the date
        result = FileResult("", Outcome.WRITTEN, repaired=self.dicognito.anonymize(dataset), study_day=day)
        result.private_kept, result.private_removed = apply_private_policy(dataset, self.policy.private_tags)
        if self.basic is not None:  # Table E.1-1 after dicognito: its pseudonyms are the dummies the table allows
            result.profile_actions = dict(sorted(self.basic.apply(dataset, originals).items()))
        record_method(dataset, self.policy.profile, frozenset(self.policy.basic_options), moved)
        if self.policy.patient_name is not None:
            dataset.PatientName = self.policy.patient_name
        pairs = replacements(known, dataset)
        scrubbed = scrub(dataset, pairs)
        result.scrubbed = {f"{value} in {place}": count for (value, place), count in sorted(scrubbed.items())}
        return result, pairs

    def process_file(self, source: Path, target: Path, relpath: str, crosswalk: bool = False) -> FileResult:
        """Read `source`, anonymize it, write it to `target` atomically, and check what was written."""
        try:
            dataset = read_instance(source, relpath)
        except NotDicom as error:
            return FileResult(relpath, Outcome.SKIPPED, str(error))
        except DicomDir as error:
            return FileResult(relpath, Outcome.DROPPED, str(error))
        except BadDicom as error:
            return FileResult(relpath, Outcome.BAD, str(error))
        burned_in = burned_in_text_risk(dataset)
        facts = original_facts(dataset, self.policy)  # before the dataset is changed in place
        try:
            result, pairs = self._anonymize(dataset)
        except Exception as error:  # noqa: BLE001 - dicognito met a value it cannot handle; name the file, not the value
            return FileResult(relpath, Outcome.BAD, f"{relpath}: anonymization failed ({type(error).__name__})")
        name_pairs = {value: pair for value, pair in pairs.items() if value not in self.named}
        self.named.update(name_pairs)
        # Names are de-identified as values are: storescp names a file after its original SOP Instance UID.
        out_relpath = scrub_path(relpath, pairs)
        leftovers = path_leftovers(facts, out_relpath, {new for new, _ in pairs.values()})
        shown = masked_path(out_relpath, leftovers) if leftovers else out_relpath
        if burned_in and self.policy.profile == "basic":
            reason = f"may carry burned-in text ({burned_in}): not published under profile basic without pixel cleaning"
            held = FileResult(shown, Outcome.BAD, f"{shown}: {reason}", burned_in=burned_in, name_pairs=name_pairs)
            held.source_relpath = relpath if shown != relpath else ""
            return held
        if leftovers:
            names = " and ".join(sorted({source for source, _, _ in leftovers}))
            reason = f"its file or folder name holds the original {names}; rename it in a copy of the input"
            return FileResult(shown, Outcome.BAD, f"{shown}: {reason}", source_relpath=relpath, name_pairs=name_pairs)
        if out_relpath != relpath:
            target = _renamed(target, relpath, out_relpath)
        replace_file_framing(dataset)
        stream_large_pixel_data(dataset)
        # Encoded in memory, then written with one call: pydicom's many small writes cost more on a file, and
        # the check below parses and scans exactly the bytes the file holds.
        encoded = io.BytesIO()
        try:
            dataset.save_as(encoded, enforce_file_format=True)
        except (AttributeError, ValueError, TypeError) as error:
            reason = _unwritable_reason(dataset, error)
            return FileResult(relpath, Outcome.BAD, f"{relpath}: {reason}", name_pairs=name_pairs)
        content = encoded.getvalue()
        try:
            _write_atomically(target, content)
        except OSError as error:
            if error.errno != errno.ENAMETOOLONG:
                raise  # a full disk stops the job
            reason = f"{out_relpath}: {_name_too_long(out_relpath)}"
            source_relpath = relpath if out_relpath != relpath else ""
            return FileResult(out_relpath, Outcome.BAD, reason, source_relpath=source_relpath, name_pairs=name_pairs)
        result.relpath, result.burned_in, result.name_pairs = out_relpath, burned_in, name_pairs
        result.source_relpath = relpath if out_relpath != relpath else ""
        result.failures = check_output(facts, content, out_relpath, self.policy)
        result.modality = str(dataset.get("Modality", ""))
        result.series = str(dataset.get("SeriesInstanceUID", ""))
        result.patient = patient_token(self.policy.seed, facts.patient_id)
        result.study = study_token(self.policy.seed, facts.study_uid)
        result.instance = str(dataset.get("SOPInstanceUID", ""))
        if crosswalk:
            result.crosswalk = (
                facts.patient_id,
                str(dataset.get("PatientID", "")),
                facts.study_uid,
                str(dataset.get("StudyInstanceUID", "")),
                offset_in_days(self.dicognito.offset(facts.patient_id)),
            )
        return result


def study_day(seed: str, dataset: pydicom.Dataset) -> int:
    """The day of the file's study as a number moved by its patient's keyed offset (0: no real StudyDate): the
    days of one patient and the distances between them are the real ones, the dates are not."""
    value = str(dataset.get("StudyDate", "") or "").strip()
    if len(value) != 8 or not value.isdigit() or tags.is_placeholder(value):
        return 0
    try:
        day = datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:  # a malformed date: dicognito_adapter empties it and the report counts it
        return 0
    return day.toordinal() + date_offset_days(seed, original_patient_id(dataset))


# One per worker process, built by the pool's initializer.
_worker: FileDeidentifier | None = None
_crosswalk = False
_parent = 0


def skip_value_validation() -> None:
    """pydicom checks each value it decodes or is given against its VR and warns, quoting the value (a UID with
    letters, say); a worker's warnings reach Snakemake's console and Slurm's logs. The workflow replaces or
    checks every value that matters itself, so worker processes skip pydicom's check (also -3 % CPU per file)."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE


def _exit_with_parent(parent: int) -> None:
    """A worker whose job process alone was killed (the OOM killer, a kill of its pid) would wait for work forever:
    it holds the pipe its parent fed it too, so it never reads the end of it. It leaves within a second instead."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _start_worker(policy: Policy, crosswalk: bool) -> None:
    global _worker, _crosswalk, _parent
    skip_value_validation()
    _worker, _crosswalk, _parent = FileDeidentifier(policy), crosswalk, os.getppid()


def _start_pool_worker(policy: Policy, crosswalk: bool) -> None:
    _start_worker(policy, crosswalk)
    threading.Thread(target=_exit_with_parent, args=(_parent,), daemon=True).start()


def worker_pool(policy: Policy, crosswalk: bool, workers: int) -> ProcessPoolExecutor:
    """`workers` processes, each building its seeded anonymizer once. Forked, whatever Python's default (forkserver
    from 3.14): a worker then starts with the job's imports, and its parent is the job, which it watches."""
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(workers, context, initializer=_start_pool_worker, initargs=(policy, crosswalk))


def _deidentify_one(job: tuple[str, str, str]) -> FileResult:
    if os.getppid() != _parent:  # the job was killed: stop, rather than write into its rerun's folder
        os._exit(1)
    relpath, source, target = job
    return _worker.process_file(Path(source), Path(target), relpath, crosswalk=_crosswalk)


def _results(jobs: list, policy: Policy, crosswalk: bool, workers: int):
    if workers <= 1 or len(jobs) < 2:
        _start_worker(policy, crosswalk)
        yield from map(_deidentify_one, jobs)
        return
    # One process per thread; map keeps the input order.
    with worker_pool(policy, crosswalk, workers) as pool:
        yield from pool.map(_deidentify_one, jobs, chunksize=max(1, min(32, len(jobs) // (workers * 8))))


def name_like_written_neighbours(results: list[FileResult]) -> None:
    """A file that was not written (skipped, dropped, bad) is named in the reports by its input path; where a
    written file of the same folder had that folder renamed (a folder named after the patient), the reports show
    the new folder name instead, so they hold no more of the original than the output does."""
    renamed: dict[tuple[str, ...], tuple[str, ...]] = {}
    for result in results:
        source, output = PurePosixPath(result.source).parent.parts, PurePosixPath(result.relpath).parent.parts
        if result.source_relpath and len(source) == len(output):
            for depth in range(1, len(source) + 1):
                renamed.setdefault(source[:depth], output[:depth])
    for result in results:
        if result.outcome is Outcome.WRITTEN or result.source_relpath:
            continue
        parts = PurePosixPath(result.relpath).parts
        depth = next((d for d in range(len(parts) - 1, 0, -1) if parts[:d] in renamed), 0)
        if depth:
            _show_as(result, "/".join(renamed[parts[:depth]] + parts[depth:]))


def _show_as(result: FileResult, shown: str) -> None:
    """Name a file that was not written `shown` in the reports and messages; its input path stays its source."""
    result.reason = result.reason.replace(f"{result.relpath}: ", f"{shown}: ", 1)
    result.source_relpath, result.relpath = result.source, shown


def name_unwritten_files(results: list[FileResult], sources: Sources) -> None:
    """The known values out of the names of files that were not written (skipped, dropped, bad) and of archives
    that could not be unpacked, each replaced by what replaced it in the files (scrub_path): the reports in the
    output name them, and a note beside a patient's images is often named after the patient. The values come
    from the session's files that were read (name_pairs); the log, outside the output, says which file is which."""
    known: dict[str, tuple[str, str]] = {}
    for result in results:
        for value, pair in (result.name_pairs or {}).items():
            known.setdefault(value, pair)
        result.name_pairs = None  # identifying: never into the results file
    if not known:
        withhold_names(results, sources)
        return
    scrubber = NameScrubber(known)
    for result in results:
        if result.outcome is Outcome.WRITTEN:
            continue
        if (shown := scrubber.path(result.relpath)) != result.relpath:
            _show_as(result, shown)
        result.reason = scrubber.text(result.reason)  # it may quote other names: two files mapped to one path
        if result.source != result.relpath:  # renamed here, by its neighbours' folders or by its own worker
            log.info("%s is named %s in the reports: its name holds a known value", result.source, result.relpath)
    for index, problem in enumerate(sources.problems):  # "<archive>: <reason>", which may quote member names
        if (shown := scrubber.text(problem)) != problem:
            log.info("%s is shown as %s in the reports: it holds a known value", problem, shown)
            sources.problems[index] = shown


WITHHELD = "name-withheld-"
_NOTHING_READ = "no file of this session could be read to clear its name"
# What names a file inside a reason: a quoted name (an archive member, zipfile's own messages), and the two inputs
# that map to one output path (stages.unpack).
_QUOTED_NAME = re.compile(r"""b?('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_TWO_INPUTS = re.compile(r"both .+ and .+ map to this output path")


def withhold_names(results: list[FileResult], sources: Sources) -> None:
    """No file of the session could be read, so no value of it can tell a harmless name (IM_0001) from one that
    identifies (Mueller_Hans.pdf, a SOP Instance UID): the reports name each file and each archive problem by a
    number instead (name-withheld-1), and the names a reason quotes are taken out of it. The log, outside the
    output, says which number stands for which input path."""
    unwritten = sorted((r for r in results if r.outcome is not Outcome.WRITTEN), key=lambda r: r.source)
    fronts = [split_message(problem) for problem in sources.problems]
    width = len(str(len(unwritten) + len(fronts)))
    labels = [f"{WITHHELD}{number:0{width}d}" for number in range(1, len(unwritten) + len(fronts) + 1)]

    def reason(text: str) -> str:
        text = _TWO_INPUTS.sub("two input files map to this output path", text)
        return _QUOTED_NAME.sub("(name withheld)", text)

    # Archive problems first, as the session's error lists them (records.bad_files).
    for index, ((path, why), label) in enumerate(zip(fronts, labels, strict=False)):
        log.info("%s is shown as %s in the reports: %s", path, label, _NOTHING_READ)
        sources.problems[index] = f"{label}: {reason(why)}"
    for result, label in zip(unwritten, labels[len(fronts) :], strict=True):
        log.info("%s is named %s in the reports: %s", result.source, label, _NOTHING_READ)
        _show_as(result, label)
        result.reason = f"{label}: {reason(result.failure().reason)}"


def _size(job: tuple[str, str, str]) -> int:
    try:
        return os.stat(job[1]).st_size
    except OSError:  # reported as the file is processed
        return 0


def anonymize_session(
    sources: Sources,
    out_dir: Path,
    policy: Policy,
    workers: int,
    session: str,
    crosswalk_file: Path | None = None,
    on_bad_file: str = FAIL_SESSION,
) -> list[FileResult]:
    """De-identify and check every source into `out_dir`; raise SessionError listing every bad file, or every
    file of a session that holds not one DICOM instance.

    on_bad_file skip_file: bad files are only logged (the publish stage leaves them out), unless no file at all
    could be de-identified."""
    # Largest first: a worker left alone with a 50 MB multi-frame file at the end idles the others.
    jobs = sorted(((rel, src, str(out_dir / rel)) for rel, src in sources.files), key=_size, reverse=True)
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
    name_like_written_neighbours(results)
    name_unwritten_files(results, sources)
    results.sort(key=lambda r: r.relpath)  # the sources' order: results do not depend on the workers
    failures = bad_files(sources, results)
    if failures and on_bad_file != SKIP_FILE:
        raise session_error(session, failures)
    nothing_written = not any(r.outcome is Outcome.WRITTEN for r in results)
    if failures and nothing_written:
        raise session_error(session, failures, "bad file(s) and not one good DICOM file")
    if nothing_written:
        # Only notes, a DICOMDIR, a PDF: published, the session would look exported with nothing in it.
        raise session_error(session, [r.failure() for r in results], "file(s), not one of them a DICOM instance")
    for failure in failures:
        log.warning("%s: left out (on_bad_file: skip_file): %s", session, failure.line())
    if crosswalk_file is not None:
        added = append_rows(crosswalk_file, session, {r.crosswalk for r in results if r.crosswalk})
        log.info("%s: %d new row(s) in the crosswalk", session, added)
        for result in results:
            result.crosswalk = None  # identifying: never into the results file
    return results
