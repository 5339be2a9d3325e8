"""How many worker processes each session job runs when Snakemake runs the jobs on this machine.

A session job with `threads` workers owns that many cores from its start to its end, and between sessions
the cores wait for the job to exit and the next one to start and import pydicom (~0.5 s per session here).
With many sessions per core, one worker per job lets the sessions overlap instead, and nothing waits; with
few, one worker per job would leave cores idle at the end, so each job gets the cores it can use.
"""

from __future__ import annotations

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
