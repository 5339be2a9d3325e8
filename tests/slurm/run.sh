#!/usr/bin/env bash
# make test-slurm: the workflow on Slurm, checked as the local run is.
#
#   tests/slurm/run.sh [pytest args...]
#
# 1. starts the single-node test cluster (tests/slurm/cluster.sh start: installs the
#    Debian packages if missing) unless a Slurm cluster already answers;
# 2. runs tests/slurm/test_slurm_workflow.py (DEID_SLURM_TESTS=1) under `timeout`, so a
#    hang fails instead of blocking CI;
# 3. cancels Slurm jobs left behind by a killed run, and stops the cluster if, and only
#    if, step 1 started it (a cluster that was already running is left alone).
#
# Environment:
#   DEID_SLURM_PYTHON        python with the pinned packages (default: .venv/bin/python)
#   DEID_SLURM_TEST_TIMEOUT  seconds for the whole pytest run (default 420)
#   DEID_SLURM_RUN_TIMEOUT   seconds for one snakemake run (default 300)
#   DEID_SLURM_BASETEMP      pytest's temp dir (default /tmp/deid-slurm-tests); kept if a
#                            test fails (console logs: <test dir>.<n>.console.log), else removed
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CLUSTER="$HERE/cluster.sh"
PY="${DEID_SLURM_PYTHON:-$REPO/.venv/bin/python}"
LIMIT="${DEID_SLURM_TEST_TIMEOUT:-420}"
BASETEMP="${DEID_SLURM_BASETEMP:-/tmp/deid-slurm-tests}"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf '[test-slurm] %s\n' "$*" >&2; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[[ -x "$PY" ]] || { log "no $PY: run 'make venv' first"; exit 1; }
"$PY" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null ||
    { log "$PY lacks snakemake-executor-plugin-slurm: pip install -r requirements.txt"; exit 1; }

STARTED=0
TESTS_PID="" # the `timeout` running pytest: leader of the process group of pytest and its snakemake runs
T0=$EPOCHREALTIME

# End what is left of the test run's process group. `timeout` exits as soon as pytest has
# died, possibly before Snakemake (which ignores SIGTERM while it waits for Slurm jobs).
end_test_processes() {
    [[ -n "$TESTS_PID" ]] || return 0
    if kill -0 "$TESTS_PID" 2>/dev/null; then
        log "stopping the test run (pid $TESTS_PID)"
        kill -TERM "$TESTS_PID" 2>/dev/null || true # timeout passes it on to pytest and snakemake
        wait "$TESTS_PID" 2>/dev/null || true
    fi
    kill -KILL -- "-$TESTS_PID" 2>/dev/null || true
    TESTS_PID=""
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    end_test_processes
    # A killed Snakemake leaves its Slurm jobs queued: cancel them (job name = run id).
    local id
    while read -r id; do
        [[ -n "$id" ]] && { timeout 10 scancel --name "$id" 2>/dev/null || true; }
    done < <(sed -n 's/^SLURM run ID: //p' "$BASETEMP"/*.console.log 2>/dev/null | sort -u)
    if ((STARTED)); then
        "$CLUSTER" stop || rc=1
    else
        log "the Slurm cluster was running before: left running"
    fi
    if ((rc == 0)); then
        rm -rf "$BASETEMP"
    elif [[ -d "$BASETEMP" ]]; then
        log "kept for inspection: $BASETEMP"
    fi
    log "done in $(since "$T0") s, exit $rc"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if "$CLUSTER" status >/dev/null 2>&1; then
    log "a Slurm cluster answers already; using it"
else
    t0=$EPOCHREALTIME
    STARTED=1 # set first: a start that fails half-way is still cleaned up by stop
    "$CLUSTER" start
    log "cluster started in $(since "$t0") s"
fi

cd "$REPO"
t0=$EPOCHREALTIME
# In the background so that the traps run at once on INT/TERM; -k: Snakemake ignores SIGTERM
# while it waits for Slurm jobs, only SIGKILL ends a hang.
DEID_SLURM_TESTS=1 timeout -k 15 "$LIMIT" "$PY" -m pytest -p no:cacheprovider -v \
    --basetemp "$BASETEMP" tests/slurm/ "$@" &
TESTS_PID=$!
rc=0
wait "$TESTS_PID" || rc=$?
end_test_processes
if ((rc == 124 || rc == 137)); then
    echo >&2
    log "FAILED: the Slurm tests did not finish within ${LIMIT} s"
fi
log "Slurm tests took $(since "$t0") s"
exit "$rc"
