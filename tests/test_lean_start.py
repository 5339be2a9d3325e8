"""The anonymize job starts without numpy, requests and tqdm (dicom_deid/lean_start.py): pydicom must then write
the same bytes as with them, on real vendor files and every transfer syntax pydicom ships examples of."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicom_deid.records import Outcome, default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, skip_value_validation
from vendor_data import VENDOR_FILES

SEED = "cd" * 32
# Beside the vendor files: big endian, implicit VR, deflated, RLE, JPEG (baseline, lossless, LS, 2000), enhanced CT
# with functional groups, float-valued and RT files.
PYDICOM_FILES = (
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "image_dfl.dcm",
    "MR_small_RLE.dcm",
    "JPEG-LL.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "eCT_Supplemental.dcm",
    "rtdose.dcm",
    "rtplan.dcm",
    "waveform_ecg.dcm",
)

LEAN_WORKER = """
import sys
from pathlib import Path
from dicom_deid.lean_start import NOT_NEEDED, skip_unneeded_imports

skip_unneeded_imports()
from dicom_deid.records import default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, skip_value_validation

skip_value_validation()
worker = FileDeidentifier(default_policy(sys.argv[1]))
inputs, out = Path(sys.argv[2]), Path(sys.argv[3])
for path in sorted(inputs.iterdir()):
    result = worker.process_file(path, out / path.name, path.name)
    print(result.relpath, result.outcome.name, sorted(name for name, failed in result.failures.items() if failed))
print("loaded:", sorted(name for name in NOT_NEEDED if sys.modules.get(name) is not None))
"""


@pytest.fixture(scope="module")
def real_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    for name, vendor_file in VENDOR_FILES.items():
        (folder / f"{name}.dcm").write_bytes(vendor_file.load())
    for name in PYDICOM_FILES:
        (folder / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    return folder


def test_the_lean_start_writes_the_same_bytes_without_numpy_requests_and_tqdm(real_files, tmp_path):
    lean, full = tmp_path / "lean", tmp_path / "full"
    lean.mkdir(), full.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", LEAN_WORKER, SEED, str(real_files), str(lean)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = run.stdout.splitlines()
    assert lines[-1] == "loaded: []"  # else this test compares nothing new
    assert run.stderr == ""  # no warning about what is missing

    skip_value_validation()
    worker = FileDeidentifier(default_policy(SEED))
    for line, path in zip(lines[:-1], sorted(real_files.iterdir()), strict=True):
        result = worker.process_file(path, full / path.name, path.name)
        assert result.outcome is Outcome.WRITTEN and not any(result.failures.values()), path.name
        # Named as written: toshiba_mr_small.dcm holds its InstitutionName TOSHIBA, and is renamed.
        assert line == f"{result.relpath} WRITTEN []"
        assert (lean / result.relpath).read_bytes() == (full / result.relpath).read_bytes(), path.name
    assert sys.modules.get("numpy") is not None  # the in-process run had numpy at hand
