"""The checks every session must pass, and the session-level check that gathers the per-file ones.

The per-file checks (verify.py) run in the worker that wrote each file. This module imports no pydicom,
so the verify job that gathers them starts fast. Messages name files by output path, never a value.
"""

from __future__ import annotations

from pathlib import Path

FILE_CHECKS = (
    "readable",
    "transfer_syntax_unchanged",
    "pixel_data_unchanged",
    "replaced_tags_changed",
    "removed_tags_absent",
    "no_original_values_in_bytes",
    "policy_held",
)
CHECKS = ("every_instance_once", *FILE_CHECKS)


def _is_instance(path: Path) -> bool:
    # Imported here: only sessions with skipped files need pydicom, and the verify job starts faster without.
    from dicom_deid.dicomfile import DicomDir, NotDicom, read_instance

    try:
        read_instance(path, path.name)
    except (NotDicom, DicomDir):
        return False
    return True


def verify_session(staged: dict, results: list[dict], out_dir: Path) -> dict:
    """Gather the per-file checks and add the session-level one.

    Returns {check: {"result": "pass" | "fail", "failures": [...]}} for every check in CHECKS.
    """
    failures: dict[str, list[str]] = {name: [] for name in CHECKS}
    sources = dict(staged["sources"])
    expected = sorted(r["relpath"] for r in results if r["status"] == "written")
    # out_dir is anonymized/files: Snakemake's .snakemake_timestamp of the directory() output sits one level up.
    present = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    once = failures["every_instance_once"]
    once += [f"{rel}: input file has no outcome" for rel in sorted(set(sources) - {r["relpath"] for r in results})]
    once += [f"{rel}: DICOM instance missing from the output" for rel in sorted(set(expected) - set(present))]
    once += [f"{rel}: output file that no input instance accounts for" for rel in sorted(set(present) - set(expected))]
    for result in results:
        if result["status"] in ("skipped", "dropped") and _is_instance(Path(sources[result["relpath"]])):
            once.append(f"{result['relpath']}: a DICOM instance was left out")
        if result["status"] == "written" and set(result["failures"]) != set(FILE_CHECKS):
            once.append(f"{result['relpath']}: was not checked")
        for name, items in result["failures"].items():
            failures[name] += items
    return {name: {"result": "fail" if items else "pass", "failures": items} for name, items in failures.items()}
