"""Check a session's de-identified output against its input, independently of how it was made.

Reports name files by their output path and never quote a value from a file.
"""

from __future__ import annotations

import hashlib
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
from dicognito.addressanonymizer import AddressAnonymizer

from dicom_deid import tags
from dicom_deid.anonymize import DepartmentName
from dicom_deid.dicomfile import PIXEL_KEYWORDS, DicomDir, NotDicom, read_instance

CHECKS = (
    "every_instance_once",
    "readable",
    "transfer_syntax_unchanged",
    "pixel_data_unchanged",
    "replaced_tags_changed",
    "removed_tags_absent",
    "no_original_values_in_bytes",
)

# Snakemake dates a directory() output by this empty file inside it.
SNAKEMAKE_STAMP = ".snakemake_timestamp"

# Values this short could match any file by chance; they are checked tag by tag only. Values shorter than
# WHOLE_FILE_SCAN_LENGTH are searched in the header only, since pixel bytes would match them by chance.
MIN_SCAN_LENGTH = 3
WHOLE_FILE_SCAN_LENGTH = 6

# Words dicognito itself writes as fake values (streets, cities, countries, our department names): a real
# value equal to one of them (say a CountryOfResidence of CANADA) would otherwise match its own pseudonym.
FAKE_VOCABULARY = {
    word.upper()
    for word in (
        *AddressAnonymizer._streets,
        *AddressAnonymizer._cities,
        *AddressAnonymizer._countries,
        *DepartmentName.OUTPUTS,
    )
}

_REPLACED_TAGS = {pydicom.datadict.tag_for_keyword(k) for k in tags.REPLACED}
_REMOVED_TAGS = {pydicom.datadict.tag_for_keyword(k) for k in tags.REMOVED}
_SCANNED_TAGS = {pydicom.datadict.tag_for_keyword(k) for k in tags.SCANNED}


def walk(dataset: pydicom.Dataset, prefix: tuple = ()):
    """Yield (path, element) for every element at every depth; path = (tag, item index, tag, ...)."""
    for element in dataset:
        path = (*prefix, element.tag)
        yield path, element
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                yield from walk(item, (*path, index))


def _strings(element: pydicom.DataElement) -> list[str]:
    value = element.value
    if value is None or value == "":
        return []
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def _encodings(value: str) -> set[bytes]:
    return {value.encode("utf-8"), value.encode("latin-1", errors="ignore")} - {b""}


def _pixel_digest(dataset: pydicom.Dataset) -> str:
    digest = hashlib.sha256()
    for keyword in PIXEL_KEYWORDS:
        if keyword in dataset:
            digest.update(keyword.encode() + bytes(dataset[keyword].value))
    return digest.hexdigest()


def _header_length(path: Path) -> int:
    """Bytes before the pixel data element, so short values can be searched in the header only."""
    with warnings.catch_warnings(), open(path, "rb") as handle:
        warnings.simplefilter("ignore")
        # pydicom leaves the file positioned at the element it stopped before.
        pydicom.dcmread(handle, stop_before_pixels=True)
        return handle.tell()


def original_facts(source: Path, relpath: str) -> dict:
    """What the output must preserve or must not contain, read from the original file."""
    dataset = read_instance(source, relpath)
    replaced, identifying = {}, set()
    for path, element in walk(dataset):
        if element.tag in _REPLACED_TAGS:
            replaced[path] = _strings(element)
        if element.tag in _SCANNED_TAGS:
            identifying.update(v for v in _strings(element) if v.upper() not in FAKE_VOCABULARY)
    return {
        "transfer_syntax": str(dataset.file_meta.TransferSyntaxUID),
        "pixels": _pixel_digest(dataset),
        "replaced": replaced,
        "identifying": identifying,
    }


def check_file(source: Path, output: Path, relpath: str) -> dict[str, list[str]]:
    """Compare one output file with its original; return {check name: [failure, ...]}."""
    failures: dict[str, list[str]] = {name: [] for name in CHECKS}
    facts = original_facts(source, relpath)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(output)
    except Exception as error:
        failures["readable"].append(f"{relpath}: output does not read as DICOM ({type(error).__name__})")
        return failures

    if str(dataset.file_meta.TransferSyntaxUID) != facts["transfer_syntax"]:
        failures["transfer_syntax_unchanged"].append(f"{relpath}: transfer syntax changed")
    if _pixel_digest(dataset) != facts["pixels"]:
        failures["pixel_data_unchanged"].append(f"{relpath}: pixel data changed")

    after = {}
    for path, element in walk(dataset):
        if element.tag in _REMOVED_TAGS:
            failures["removed_tags_absent"].append(f"{relpath}: {element.keyword} still present")
        if element.tag in _REPLACED_TAGS:
            after[path] = _strings(element)
    for path, values in facts["replaced"].items():
        keyword = pydicom.datadict.keyword_for_tag(path[-1])
        if path not in after:
            failures["replaced_tags_changed"].append(f"{relpath}: {keyword} was removed instead of replaced")
        elif values and after[path] == values:
            failures["replaced_tags_changed"].append(f"{relpath}: {keyword} still holds its original value")

    content = output.read_bytes()
    header = content[: _header_length(output)]
    for value in facts["identifying"]:
        if len(value) < MIN_SCAN_LENGTH:
            continue
        haystack = content if len(value) >= WHOLE_FILE_SCAN_LENGTH else header
        if any(needle in haystack for needle in _encodings(value)):
            failures["no_original_values_in_bytes"].append(f"{relpath}: an original identifying value is present")
    return failures


def _is_instance(path: Path) -> bool:
    try:
        read_instance(path, path.name)
    except (NotDicom, DicomDir):
        return False
    return True


def _check_one(job: tuple[str, str, str]) -> dict[str, list[str]]:
    relpath, source, output = job
    return check_file(Path(source), Path(output), relpath)


def verify_session(staged: dict, results: list[dict], out_dir: Path, workers: int) -> dict:
    """Run every check over a session; return {check: {"result": pass|fail, "failures": [...]}}."""
    failures: dict[str, list[str]] = {name: [] for name in CHECKS}
    sources = dict(staged["sources"])
    expected = sorted(r["relpath"] for r in results if r["status"] == "written")
    accounted = {r["relpath"] for r in results}
    present = sorted(
        p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file() and p.name != SNAKEMAKE_STAMP
    )
    for relpath in sorted(set(sources) - accounted):
        failures["every_instance_once"].append(f"{relpath}: input file has no outcome")
    for result in results:
        if result["status"] in ("skipped", "dropped") and _is_instance(Path(sources[result["relpath"]])):
            failures["every_instance_once"].append(f"{result['relpath']}: a DICOM instance was left out")
    for relpath in sorted(set(expected) - set(present)):
        failures["every_instance_once"].append(f"{relpath}: DICOM instance missing from the output")
    for relpath in sorted(set(present) - set(expected)):
        failures["every_instance_once"].append(f"{relpath}: output file that no input instance accounts for")

    jobs = [(rel, sources[rel], str(out_dir / rel)) for rel in expected if rel in present]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_check_one, jobs, chunksize=max(1, min(64, len(jobs) // (workers * 8)))))
    else:
        outcomes = [_check_one(job) for job in jobs]
    for outcome in outcomes:
        for name, items in outcome.items():
            failures[name] += items
    return {name: {"result": "fail" if items else "pass", "failures": items} for name, items in failures.items()}
