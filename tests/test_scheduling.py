"""Workers per session job: sessions overlap when there are many, share the cores when there are few; and the
memory a session job asks for, against a worker's measured peak."""

from __future__ import annotations

import subprocess
import sys

import pydicom
import pytest

from dicom_deid.scheduling import COPIES_OF_A_FILE, WORKER_BASE_MB, job_mem_mb, workers_per_session


@pytest.mark.parametrize(
    ("threads", "cores", "to_do", "workers"),
    [
        (2, 2, 6, 1),  # 3 sessions per core: they overlap, one worker each
        (2, 2, 500, 1),
        (2, 2, 5, 2),  # fewer: one worker each would leave a core idle at the end
        (2, 2, 3, 2),
        (2, 2, 2, 1),  # both at once, a core each
        (2, 2, 1, 2),
        (2, 1, 1, 1),  # never more than the cores
        (8, 8, 2, 4),  # the cores shared out
        (2, 8, 2, 2),  # never more than `threads`
        (4, 8, 20, 4),
        (4, 8, 24, 1),
        (2, 2, 0, 2),  # nothing left to do (a rerun): whatever runs gets `threads`
    ],
)
def test_workers_per_session(threads, cores, to_do, workers):
    assert workers_per_session(threads, cores, to_do) == workers


@pytest.mark.parametrize(
    ("workers", "largest_mb", "mem_mb"),
    [
        (1, 0.01, 900),  # ordinary files: the floor of 400 per worker
        (2, 0.5, 1300),
        (1, 150, 900),  # 100 + 2 x 150 still fits the floor
        (1, 200, 1000),  # a big enhanced multi-frame file: two copies of it
        (2, 200, 1500),  # each worker may hold one
    ],
)
def test_a_session_job_asks_for_two_copies_of_its_largest_file_per_worker(workers, largest_mb, mem_mb):
    assert job_mem_mb(workers, int(largest_mb * 2**20)) == mem_mb


WORKER_PEAK = """
import sys
from pathlib import Path
import pydicom
from dicom_deid.records import default_policy
from dicom_deid.stages.anonymize import FileDeidentifier, skip_value_validation


def peak_mb():  # this process's own high-water mark (ru_maxrss would start at the parent's, across exec)
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


skip_value_validation()
worker = FileDeidentifier(default_policy("ab" * 32))
out = Path(sys.argv[2])
worker.process_file(Path(pydicom.data.get_testdata_file("CT_small.dcm")), out / "small.dcm", "small.dcm")
before = peak_mb()
result = worker.process_file(Path(sys.argv[1]), out / "big.dcm", "big.dcm")
assert result.outcome.name == "WRITTEN" and not any(result.failures.values()), result
print(before, peak_mb())
"""


def test_a_worker_holding_a_big_multi_frame_file_stays_within_what_its_job_asks_for(tmp_path):
    # An uncompressed enhanced file as Siemens XA and Philips write them, 64 MB: the worker's peak must stay within
    # the per-worker estimate (a third copy of the file would break it), measured in a fresh process.
    dataset = pydicom.examples.ct
    frames = 128
    dataset.Rows = dataset.Columns = 512
    dataset.NumberOfFrames = frames
    dataset.PixelData = bytes(512 * 512 * 2 * frames)
    big = tmp_path / "big.dcm"
    dataset.save_as(big, enforce_file_format=True)
    size_mb = big.stat().st_size / 2**20
    run = subprocess.run(
        [sys.executable, "-c", WORKER_PEAK, str(big), str(tmp_path)], capture_output=True, text=True, check=True
    )
    before_mb, peak_mb = map(float, run.stdout.split())
    assert peak_mb - before_mb > 1.5 * size_mb  # the measurement sees the file (else this test proves nothing)
    assert peak_mb <= WORKER_BASE_MB + COPIES_OF_A_FILE * size_mb
