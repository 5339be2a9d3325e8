"""The bench's account of idle cores: where the core-seconds no process used went, by what was running."""

import os
import re
from pathlib import Path

import pytest

from bench.measure import IDLE_PHASES, WORKERS, Interval, Job, JobSampler, Run, fastest, name_job
from bench.report import ceiling

RULES = Path(__file__).resolve().parents[1] / "rules"


def _run(intervals: list[Interval], seconds: float, cpu_s: float) -> Run:
    sampler = JobSampler(os.getpid(), 0.0)  # never started: the samples are set here
    sampler.jobs = {(1, 0.0): Job(rule="anonymize_session", first_seen=1.0, last_seen=9.0)}
    sampler.intervals = intervals
    return Run("workflow", seconds, cpu_s, 0, 0, Path("log"), 0.0, sampler)


def test_idle_core_seconds_go_to_what_was_running_and_add_up_to_the_run():
    intervals = [
        Interval(0.0, 1.0, cpu_s=0.5, workers=0),  # Snakemake alone, before any job
        Interval(1.0, 3.0, cpu_s=2.0, workers=0),  # unpack and publish only
        Interval(3.0, 6.0, cpu_s=5.4, workers=2),
        Interval(6.0, 9.0, cpu_s=3.3, workers=1),  # the last session alone
    ]
    run = _run(intervals, seconds=10.0, cpu_s=11.4)  # 0.2 s of CPU after the last sample

    idle = run.idle_cores(cores=2)

    assert idle == pytest.approx({"start": 1.5, "no_worker": 2.0, "every_core": 0.6, "fewer_workers": 2.7, "end": 1.8})
    assert sum(idle.values()) == pytest.approx(2 * 10.0 - 11.4)
    assert set(idle) == set(IDLE_PHASES)


def test_a_job_is_named_with_the_workers_its_rule_gives_it():
    # The bench reads the worker count from the rule's own option: renaming it there must fail here.
    shell_block = (RULES / "anonymize.smk").read_text().split("shell:")[1]
    shell = "".join(re.findall(r'"([^"]*)"', shell_block)).replace("{threads}", "3")
    shell = re.sub(r"\{[^}]+\}", "x", shell).replace("--log x", "--log logs/anonymize_session/S/S_01.log")
    job = Job()

    name_job(job, f"/bin/bash -c set -euo pipefail;  {shell}")

    assert WORKERS.search(shell)
    assert (job.rule, job.session, job.workers) == ("anonymize_session", "S_01", 3)


def test_the_ceiling_is_the_speed_up_the_cpu_spent_allows_with_no_idle_core():
    # 20 s for one process; 30 CPU-s spread over 2 cores at 95 %: 15.8 s, 1.27x.
    assert ceiling(20.0, 30.0, cores=2, core_use=0.95) == pytest.approx(20.0 / (30.0 / 1.9))
    assert ceiling(20.0, 20.0, cores=2, core_use=1.0) == pytest.approx(2.0)  # dicognito's own CPU: N x at best


def test_of_the_rounds_the_fastest_run_counts_but_a_failed_one_is_shown():
    slow, quick, failed = _run([], 12.0, 20.0), _run([], 10.0, 19.0), _run([], 5.0, 5.0)
    failed.problems = ["2 of 3 sessions published"]

    assert fastest([slow, quick]) is quick
    assert fastest([quick, slow]) is quick
    assert fastest([slow, failed, quick]) is failed  # a failed round is never hidden by a faster or slower one
