"""How many worker processes each session job runs when Snakemake runs the jobs on this machine, and the memory
a session job asks for.

A session job with `threads` workers owns that many cores from its start to its end, and between sessions
the cores wait for the job to exit and the next one to start and import pydicom (~0.3 s per session here).
With many sessions per core, one worker per job lets the sessions overlap instead, and nothing waits; with
few, one worker per job would leave cores idle at the end, so each job gets the cores it can use.
"""

from __future__ import annotations

import math

# From this many sessions to do per core on, a session job runs one worker: the last sessions running alone
# then leave at most about a third of a session's time idle (largest sessions go first).
SESSIONS_PER_CORE_FOR_ONE_WORKER = 3


def workers_per_session(threads: int, cores: int, sessions_to_do: int) -> int:
    """Worker processes per session job: `threads` (config) at most, never more than the cores."""
    if sessions_to_do >= SESSIONS_PER_CORE_FOR_ONE_WORKER * cores:
        return 1
    if sessions_to_do <= cores:  # every session at once, the cores shared out
        return max(1, min(threads, cores // max(1, sessions_to_do)))
    return max(1, min(threads, cores))


# Memory of a session job, in MB: the job's own process, and per worker its imports plus two copies of the file it
# holds at its peak (the original, and the output; pydicom writes large pixel data from the original's bytes and
# the check compares them in place): 58 + 2 x 50 MB and 58 + 2 x 200 MB measured for uncompressed multi-frame
# files (tests/test_scheduling.py checks it).
JOB_MB = 500
WORKER_MB = 400  # at least: any file up to 150 MB
WORKER_BASE_MB = 100
COPIES_OF_A_FILE = 2


def job_mem_mb(workers: int, largest_file_bytes: int) -> int:
    """What a session job with `workers` workers asks for (Slurm's --mem): each worker may hold the largest file."""
    per_worker = max(WORKER_MB, WORKER_BASE_MB + COPIES_OF_A_FILE * math.ceil(largest_file_bytes / 2**20))
    return JOB_MB + workers * per_worker
