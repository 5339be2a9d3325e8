"""Per-session check, run by the publish stage: gathers the per-file checks and adds the session-level one."""

from __future__ import annotations

import mmap
import os
import stat
from collections import Counter
from pathlib import Path

from dicom_deid.records import Check, FileResult, Outcome, Sources, Verdict
from dicom_deid.verify import CHECKS, FILE_CHECKS

# SOPInstanceUID's tag, little and big endian. A file without the DICM header is read as an instance only if it
# holds SOPInstanceUID (dicomfile._looks_like_dataset); without that tag's bytes too, it cannot be one, unless
# its dataset is deflated (then the tag is compressed): the deflated transfer syntax's UID must be absent too.
_MUST_BE_ABSENT = (b"\x08\x00\x18\x00", b"\x00\x08\x00\x18", b"1.2.840.10008.1.2.1.99")


def cannot_be_instance(path: Path) -> bool:
    """True when `path` is certainly not a DICOM instance, told from its bytes alone: no pydicom needed for the
    text and other files an export carries (importing it cost each publish job 0.3 s). Not a regular file (a
    pipe, a folder link that loops): never opened, since opening a pipe waits for ever."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return True
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return True
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[128:132] == b"DICM":
                return False
            return all(data.find(needle) < 0 for needle in _MUST_BE_ABSENT)


def _is_instance(path: Path) -> bool:
    if cannot_be_instance(path):
        return False
    # Imported here: only sessions with skipped files that may be DICOM need pydicom; the publish job starts
    # faster without.
    from dicom_deid.dicomfile import DicomDir, NotDicom, read_instance

    try:
        read_instance(path, path.name)
    except (NotDicom, DicomDir):
        return False
    return True


def repeated(relpaths: list[str]) -> list[str]:
    """The paths that occur more than once, sorted."""
    return sorted(rel for rel, count in Counter(relpaths).items() if count > 1)


def check_session(sources: Sources, results: list[FileResult], files_dir: Path) -> dict[str, Check]:
    """Gather the per-file checks of a session and add the session-level one, for every check in CHECKS."""
    failures: dict[str, list[str]] = {name: [] for name in CHECKS}
    source_paths = dict(sources.files)
    expected = sorted(r.relpath for r in results if r.outcome is Outcome.WRITTEN)
    present = sorted(p.relative_to(files_dir).as_posix() for p in files_dir.rglob("*") if p.is_file())
    once = failures["every_instance_once"]
    once += [f"{rel}: input file has no outcome" for rel in sorted(set(source_paths) - {r.source for r in results})]
    once += [f"{rel}: more than one input file would be published here" for rel in repeated(expected)]
    once += [f"{rel}: DICOM instance missing from the output" for rel in sorted(set(expected) - set(present))]
    once += [f"{rel}: output file that no input instance accounts for" for rel in sorted(set(present) - set(expected))]
    for result in results:
        left_out = result.outcome in (Outcome.SKIPPED, Outcome.DROPPED)
        if left_out and _is_instance(Path(source_paths[result.source])):
            once.append(f"{result.relpath}: a DICOM instance was left out")
        if result.outcome is Outcome.WRITTEN and set(result.failures) != set(FILE_CHECKS):
            once.append(f"{result.relpath}: was not checked")
        for name, items in result.failures.items():
            failures[name] += items
    return {name: Check(Verdict.FAIL if items else Verdict.PASS, items) for name, items in failures.items()}
