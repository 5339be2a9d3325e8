"""Let real downstream tools judge de-identified DICOM: dcm2niix and dciodvfy, run on input and output alike.

A de-identifier may change identifying values and nothing a researcher's pipeline reads. Our own checks
can only look for what we thought of; converting both trees with dcm2niix and comparing the NIfTI, bval/bvec
and JSON sidecars finds what we did not (a lost private b-value, a shifted slice timing, a changed voxel).
dciodvfy tells which standard violations de-identification added. heudiconv, a site's usual next step, turns
both into BIDS datasets, which must agree too, and the BIDS validator must find the same in both. Tools come
from requirements-test.txt.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIREMENTS = "requirements-test.txt"

# Series number and description: the same before and after de-identification, unlike %i %n %t %j %k %g %x
# (patient ID and name, time, UIDs, accession number, study ID), which a de-identifier changes by design.
FILENAME_PATTERN = "%s_%d"

# Sidecar fields that de-identification legitimately changes. Found by converting real vendor files
# (tests/vendor_data.py) with `dcm2niix -ba n` before and after `python -m dicognito`; everything else
# in the sidecar came out identical. -ba n keeps these fields in the sidecar (the default -ba y drops
# them all but the institution, station and acquisition time), so the comparison sees every other field
# that dcm2niix derives from the header, private ones included, and nothing is hidden by dcm2niix itself.
DEIDENTIFIED_SIDECAR_KEYS = (
    "AccessionNumber",  # an ID: replaced by a pseudonym
    "AcquisitionDateTime",  # dates are shifted
    "AcquisitionTime",  # dicognito shifts date and time together, so the time of day moves too
    "DeidentificationMethod",  # dicognito records itself in (0012,0063)
    "InstitutionAddress",  # replaced by a made-up address (added where the input had none)
    "InstitutionName",  # replaced by a made-up clinic
    "InstitutionalDepartmentName",  # replaced ("RADIOLOGY")
    "PatientBirthDate",  # dates are shifted
    "PatientID",  # replaced by a pseudonym
    "PatientName",  # replaced by a made-up name
    "ReferringPhysicianName",  # replaced by a made-up name
    "SeriesInstanceUID",  # UIDs are remapped
    "StationName",  # names the scanner's site: replaced
    "StudyID",  # an ID: replaced by a pseudonym
    "StudyInstanceUID",  # UIDs are remapped
    # Free text the workflow scrubs where it repeats a known value (a name, an ID, the station):
    "ImageComments",
    "ProcedureStepDescription",
    "StudyDescription",
)


class ToolMissing(RuntimeError):
    """A downstream tool is not installed: the tests that need it cannot judge anything."""


class ConversionFailed(RuntimeError):
    """dcm2niix exited with an error: there is nothing to compare."""


@dataclass(frozen=True)
class Conversion:
    """What dcm2niix made of one series: the files a researcher's pipeline goes on with."""

    nifti: Path
    sidecar: Mapping[str, Any]  # read-only view of the JSON sidecar; empty when dcm2niix wrote none (ROIs)
    bval: str | None  # the .bval text, None when dcm2niix wrote none
    bvec: str | None
    voxel_digest: str  # sha256 of the image bytes after vox_offset: orders colliding series stably


def tool_path(name: str) -> str:
    """The tool next to the running Python (a venv's bin/) or else on PATH: tests use the pinned one first."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(
        f"{name} is not installed next to {sys.executable} nor on PATH; "
        f"install the test tools with: pip install -r {REQUIREMENTS}"
    )


def _nifti_image_bytes(path: Path) -> bytes:
    """The voxel bytes of a NIfTI-1 file: everything after vox_offset (the header holds a time in descrip)."""
    return _image_bytes(path.read_bytes())


def _image_bytes(data: bytes) -> bytes:
    byteorder = "<" if struct.unpack("<i", data[:4])[0] == 348 else ">"
    (vox_offset,) = struct.unpack(byteorder + "f", data[108:112])
    return data[int(vox_offset) :]


def _collision_groups(stems: Iterable[str]) -> dict[str, list[str]]:
    """Stems dcm2niix made unique by appending a, b, ... (-w 2), grouped under the name they collided on.

    Which series gets the plain name depends on dcm2niix's internal order, which follows UIDs: after
    de-identification remaps them the two can swap, so names alone cannot pair series up.
    """
    stems = set(stems)
    groups: dict[str, list[str]] = {}
    for stem in sorted(stems):
        base = stem[:-1]
        if len(stem) > 1 and stem[-1] in "abcdefghijklmnopqrstuvwxyz" and base in stems:
            groups.setdefault(base, [base]).append(stem)
    return groups


def _stable_sort_key(conversion: Conversion) -> tuple[str, str]:
    invariant = {k: v for k, v in conversion.sidecar.items() if k not in DEIDENTIFIED_SIDECAR_KEYS}
    return conversion.voxel_digest, json.dumps(invariant, sort_keys=True, default=str)


def convert(dicom_dir: Path | str, out_dir: Path | str) -> dict[str, Conversion]:
    """Run dcm2niix on a folder, as a researcher would, and collect each series by a de-identification-stable name.

    Name collisions (two series with the same number and description) get dcm2niix's suffixes a, b, ...
    in an order that does not depend on UIDs: by voxel digest, then by the sidecar's invariant fields.
    """
    dicom_dir, out_dir = Path(dicom_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty: dcm2niix would suffix names it finds taken")
    command = [
        tool_path("dcm2niix"),
        "-b", "y",  # JSON sidecars
        "-ba", "n",  # keep every field in them; de-identified ones are ignored by name (DEIDENTIFIED_SIDECAR_KEYS)
        "-z", "n",  # plain .nii: image bytes readable without nibabel
        "-w", "2",  # name collisions get a suffix rather than overwriting (dcm2niix's default, stated)
        "-f", FILENAME_PATTERN,
        "-o", str(out_dir),
        str(dicom_dir),
    ]  # fmt: skip
    result = subprocess.run(command, check=False, capture_output=True, text=True, errors="replace", timeout=600)
    if result.returncode != 0:
        raise ConversionFailed(f"dcm2niix exited {result.returncode} on {dicom_dir}:\n{result.stdout}{result.stderr}")
    found: dict[str, Conversion] = {}
    for nifti in sorted(out_dir.glob("*.nii")):

        def text(suffix: str, nifti: Path = nifti) -> str | None:
            path = nifti.with_suffix(suffix)
            return path.read_text() if path.exists() else None

        sidecar_text = text(".json")
        found[nifti.stem] = Conversion(
            nifti=nifti,
            sidecar=types.MappingProxyType(json.loads(sidecar_text) if sidecar_text else {}),
            bval=text(".bval"),
            bvec=text(".bvec"),
            voxel_digest=hashlib.sha256(_nifti_image_bytes(nifti)).hexdigest(),
        )
    for stems in _collision_groups(found).values():
        ordered = sorted((found[stem] for stem in stems), key=_stable_sort_key)
        for stem, conversion in zip(stems, ordered, strict=True):
            found[stem] = conversion
    return found


def _normalised_lines(text: str | None) -> list[str] | None:
    return None if text is None else [" ".join(line.split()) for line in text.strip().splitlines()]


def _voxel_differences(name: str, before: Conversion, after: Conversion) -> list[str]:
    try:
        import nibabel
        import numpy
    except ImportError:  # the exact bytes say as much, only less precisely about the affine
        if before.voxel_digest != after.voxel_digest:
            return [f"{name}: voxel data differ (image bytes after vox_offset)"]
        return []
    image_before, image_after = nibabel.load(before.nifti), nibabel.load(after.nifti)
    problems = []
    if image_before.shape != image_after.shape:
        return [f"{name}: image shape {image_before.shape} became {image_after.shape}"]
    # Stored values and scaling apart: RGB NIfTIs (dcm2niix writes them for colour DICOM) cannot be scaled.
    voxels_before, voxels_after = image_before.dataobj.get_unscaled(), image_after.dataobj.get_unscaled()
    if voxels_before.dtype != voxels_after.dtype or not numpy.array_equal(voxels_before, voxels_after):
        changed = (
            int(numpy.count_nonzero(voxels_before != voxels_after)) if voxels_before.dtype == voxels_after.dtype else -1
        )
        problems.append(
            f"{name}: voxel data differ ({changed} voxels; dtype {voxels_before.dtype}, {voxels_after.dtype})"
        )
    scaling_before, scaling_after = image_before.header.get_slope_inter(), image_after.header.get_slope_inter()
    if not numpy.allclose(numpy.array(scaling_before, float), numpy.array(scaling_after, float), equal_nan=True):
        problems.append(f"{name}: voxel scaling (slope, intercept) {scaling_before} became {scaling_after}")
    if not numpy.allclose(image_before.affine, image_after.affine, atol=1e-4):
        problems.append(f"{name}: affine differs:\n{image_before.affine}\nvs\n{image_after.affine}")
    return problems


def _shown(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def _dict_differences(prefix: str, old: Mapping[str, Any], new: Mapping[str, Any], ignored: set[str]) -> list[str]:
    """Each key lost, gained or changed between two mappings, but those `ignored`, as "<prefix> lost <key> ..."."""
    problems = []
    for key in sorted((set(old) | set(new)) - ignored):
        if key not in new:
            problems.append(f"{prefix} lost {key} (was {_shown(old[key])})")
        elif key not in old:
            problems.append(f"{prefix} gained {key} = {_shown(new[key])}")
        elif old[key] != new[key]:
            problems.append(f"{prefix} {key}: {_shown(old[key])} became {_shown(new[key])}")
    return problems


def compare(
    before: Mapping[str, Conversion],
    after: Mapping[str, Conversion],
    ignored_keys: Iterable[str] = DEIDENTIFIED_SIDECAR_KEYS,
) -> list[str]:
    """Every difference a researcher would meet between two conversions, in words; [] when none."""
    ignored = set(ignored_keys)
    problems = []
    only_before, only_after = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    if only_before or only_after:
        problems.append(f"series differ: only before {only_before}, only after {only_after}")
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        problems += _voxel_differences(name, old, new)
        for suffix in ("bval", "bvec"):
            old_text, new_text = getattr(old, suffix), getattr(new, suffix)
            if _normalised_lines(old_text) != _normalised_lines(new_text):
                problems.append(f"{name}: .{suffix} differs: {old_text!r} became {new_text!r}")
        problems += _dict_differences(f"{name}: sidecar", old.sidecar, new.sidecar, ignored)
    return problems


# What dciodvfy quotes from the file, replaced so that errors compare by kind and place, not by value.
_QUOTED_VALUES = (
    (re.compile(r'"[^"]*"'), '"…"'),  # UIDs: Illegal root for UID ... - "2.123..." in (0x0008,0x0018)
    (re.compile(r"= <[^>]*>"), "= <…>"),  # CS [1] = <Anon>
    (re.compile(r"= '.*?' \(0x?[0-9a-fA-F]*\)"), "= '…' (…)"),  # Character invalid for this VR = 'n' (0x6e)
    (re.compile(r"= \d+, expected"), "= …, expected"),  # Length invalid for this VR = 17, expected <= 16
    (re.compile(r" - values are .*$"), " - values are …"),  # ratio of 1:1 - values are 1\1
)


def dciodvfy_errors(path: Path | str) -> list[str]:
    """dciodvfy's Error lines for one file, with quoted values blanked so input and output compare."""
    command = [tool_path("dciodvfy"), str(path)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, errors="replace", timeout=300)
    errors = []
    for line in (result.stdout + result.stderr).splitlines():
        if line.startswith("Error"):
            for pattern, replacement in _QUOTED_VALUES:
                line = pattern.sub(replacement, line)
            errors.append(line.rstrip())
    return errors


def new_errors(input_file: Path | str, output_file: Path | str) -> list[str]:
    """Errors in the output that the input did not have, counted: one more bad UID is one more error."""
    added = Counter(dciodvfy_errors(output_file)) - Counter(dciodvfy_errors(input_file))
    return sorted(added.elements())


# heudiconv and the BIDS validator: what a site's BIDS step makes of a session, before and after.
HEUDICONV_HEURISTIC = Path(__file__).with_name("heudiconv_heuristic.py")
# heudiconv names an extra ROI file it cannot name from the heuristic `..._heudiconv<random>_ROI1.nii.gz`.
_HEUDICONV_RANDOM = re.compile(r"_heudiconv\d+")
# Columns of a BIDS _scans.tsv that de-identification changes: the acquisition date moves with the subject's
# offset; operator is a person's name (replaced); randstr is heudiconv's own random string, new each run.
DEIDENTIFIED_SCANS_COLUMNS = ("acq_time", "operator", "randstr")


def heudiconv_convert(
    session_dir: Path | str, bids_dir: Path | str, subject: str, session: str
) -> subprocess.CompletedProcess:
    """Convert one session folder into the BIDS dataset `bids_dir` as a site would (heudiconv -c dcm2niix -b).
    Subject and session labels must be alphanumeric, as BIDS wants them."""
    tools = str(Path(tool_path("dcm2niix")).parent)
    # NO_ET: heudiconv would ask the network for a newer version (etelemetry). PATH: it runs dcm2niix by name.
    env = {**os.environ, "NO_ET": "1", "PATH": os.pathsep.join([tools, os.environ.get("PATH", "")])}
    command = [
        tool_path("heudiconv"),
        "--files", str(session_dir),
        "-s", subject, "-ss", session,
        "-f", str(HEUDICONV_HEURISTIC),
        "-c", "dcm2niix", "-b",
        "-o", str(bids_dir),
    ]  # fmt: skip
    return subprocess.run(command, check=False, capture_output=True, text=True, errors="replace", env=env, timeout=600)


def stable_bids_name(path: str) -> str:
    return _HEUDICONV_RANDOM.sub("_heudiconvN", path)


def bids_issues(bids_dir: Path | str) -> set[tuple[str, str, str]]:
    """The BIDS validator's findings on a dataset, as (severity, code, file): what a repository would refuse."""
    command = [tool_path("bids-validator-deno"), "--json", str(bids_dir)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, errors="replace", timeout=600)
    try:
        issues = json.loads(result.stdout)["issues"]["issues"]
    except (json.JSONDecodeError, KeyError) as error:
        raise RuntimeError(f"the BIDS validator gave no report ({error}):\n{result.stdout}{result.stderr}") from None
    return {(issue["severity"], issue["code"], stable_bids_name(issue.get("location", ""))) for issue in issues}


def _bids_files(root: Path) -> dict[str, Path]:
    """The dataset's files by stable name; heudiconv's own .heudiconv/ records (which name input paths) apart."""
    return {
        stable_bids_name(path.relative_to(root).as_posix()): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".heudiconv" not in path.relative_to(root).parts
    }


def _sidecar_differences(name: str, old: Mapping[str, Any], new: Mapping[str, Any], changed: set[str]) -> list[str]:
    """dcm2niix's fields compare as in compare(); heudiconv's "global" (dcmstack's copy of the DICOM header,
    derived values such as dcmmeta_affine included) may differ only in attributes the workflow changed."""
    problems = _dict_differences(f"{name}:", old, new, {*DEIDENTIFIED_SIDECAR_KEYS, "global"})
    old_meta, new_meta = old.get("global", {}), new.get("global", {})
    for part in sorted(set(old_meta) | set(new_meta)):
        problems += _dict_differences(f"{name} global.{part}:", old_meta.get(part, {}), new_meta.get(part, {}), changed)
    return problems


def _scans_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [{k: v for k, v in row.items() if k not in DEIDENTIFIED_SCANS_COLUMNS} for row in rows]


def bids_differences(before: Path | str, after: Path | str, changed_keywords: Iterable[str]) -> list[str]:
    """Every difference between two BIDS datasets heudiconv made of a session before and after de-identification,
    apart from the attributes `changed_keywords` (those the workflow changed in the DICOM headers); [] when none."""
    old_files, new_files = _bids_files(Path(before)), _bids_files(Path(after))
    changed = set(changed_keywords)
    problems = []
    if set(old_files) != set(new_files):
        problems.append(f"files differ: only before {sorted(set(old_files) - set(new_files))}, "
                        f"only after {sorted(set(new_files) - set(old_files))}")  # fmt: skip
    for name in sorted(set(old_files) & set(new_files)):
        old, new = old_files[name], new_files[name]
        if name.endswith(".nii.gz"):
            old_image, new_image = gzip.decompress(old.read_bytes()), gzip.decompress(new.read_bytes())
            if _image_bytes(old_image) != _image_bytes(new_image):
                problems.append(f"{name}: voxel data differ")
        elif name.endswith(".json"):
            problems += _sidecar_differences(name, json.loads(old.read_text()), json.loads(new.read_text()), changed)
        elif name.endswith("_scans.tsv"):
            if _scans_rows(old) != _scans_rows(new):
                problems.append(f"{name}: rows differ: {_scans_rows(old)} became {_scans_rows(new)}")
        elif name.endswith((".bval", ".bvec")):
            if _normalised_lines(old.read_text()) != _normalised_lines(new.read_text()):
                problems.append(f"{name} differs")
        elif old.read_bytes() != new.read_bytes():
            problems.append(f"{name} differs")
    return problems


def bids_dataset_bytes(root: Path | str) -> Iterable[tuple[str, bytes]]:
    """Every file of a BIDS dataset, heudiconv's records included, gzip unpacked: where a planted value could be."""
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            yield path.relative_to(root).as_posix(), gzip.decompress(data) if path.name.endswith(".gz") else data


def changed_keywords(pairs: Iterable[tuple[Path, Path]]) -> set[str]:
    """The top-level attributes, by keyword, that differ between input and output files, or that one lacks."""
    import pydicom

    changed = set()
    for before, after in pairs:
        old, new = pydicom.dcmread(before, stop_before_pixels=True), pydicom.dcmread(after, stop_before_pixels=True)
        for tag in set(old.keys()) | set(new.keys()):
            if tag not in old or tag not in new or old[tag].value != new[tag].value:
                changed.add(old[tag].keyword if tag in old else new[tag].keyword)
    return changed
