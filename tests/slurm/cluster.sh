#!/usr/bin/env bash
# Single-node Slurm on localhost for tests: start | stop | status
#
#   tests/slurm/cluster.sh start    # bring up munged + slurmctld + slurmd (or reuse a running cluster)
#   tests/slurm/cluster.sh status   # what is running, and whether we started it
#   tests/slurm/cluster.sh stop     # stop only the daemons that `start` started
#
# Environment:
#   DEID_SLURM_STATE    state dir (config copy, logs, spool, pid records); default /tmp/deid-slurm
#   DEID_SLURM_WAIT     seconds to wait for the node to become idle; default 60
#   DEID_SLURM_HEADROOM_MB  memory kept back from Slurm; default max(1024, 10% of MemTotal)
#
# Pitfalls handled here (see also the report in tests/slurm/README.md):
#   * the machine's host name is not "localhost": slurmd is started with `-N localhost`
#     so that it registers as the NodeName in slurm.conf.
#   * no systemd, and Debian's policy-rc.d forbids starting services on install: all
#     daemons are started by hand, munged as user munge (it refuses root).
#   * /run/munge (socket dir) may not exist after a reboot (tmpfs); munged insists it is
#     owned by munge and not writable by others.
#   * no usable cgroup hierarchy: proctrack/linuxproc, task/none, jobacct_gather/none.
#   * no slurmdbd: accounting_storage/none; sacct then has nothing to ask (see profile).
#   * state/spool/log/pid files all go to the state dir, never the Debian defaults
#     (/var/spool/slurmctld etc. are not created by the packages).
#   * slurmctld is started with -c (clean state) so an earlier run's node/job state
#     (e.g. node DOWN) never leaks into the next test run.
#   * sinfo retries ~9 s when no controller runs: probe with `scontrol ping` first.
#   * killed daemons linger as zombies (this machine's pid 1 reaps late): liveness
#     checks read /proc/PID/stat and ignore state Z.
#   * Debian's default MailProg (/bin/mail) is missing: MailProg=/bin/true.
#   * the packages' .debs bring no libpmix (no recommends): slurmd/slurmctld log
#     "can not load PMIx library" errors at start; harmless with MpiDefault=none.
set -euo pipefail

STATE_DIR="${DEID_SLURM_STATE:-/tmp/deid-slurm}"
WAIT_S="${DEID_SLURM_WAIT:-60}"
SLURM_CONF_PATH=/etc/slurm/slurm.conf
PIDS_FILE="$STATE_DIR/pids"          # "name pid" lines, only daemons this script started
MARK_FILE="$STATE_DIR/started"       # human-readable record of what start did
CONF_MARK="# written by tests/slurm/cluster.sh"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { printf '[cluster.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- helpers ---------------------------------------------------------------

have_binaries() {
    command -v sinfo >/dev/null 2>&1 && command -v slurmctld >/dev/null 2>&1 &&
        command -v slurmd >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 &&
        command -v srun >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1
}

# Node state(s) as sinfo reports them, empty if sinfo does not answer (bounded).
node_states() {
    command -v sinfo >/dev/null 2>&1 || return 0
    # sinfo retries for ~9 s when no controller answers; `scontrol ping` fails at once
    local ping
    ping="$(timeout 3 scontrol ping 2>/dev/null || true)"
    [[ "$ping" == *"is UP"* ]] || return 0
    timeout 5 sinfo -h -o '%t' 2>/dev/null | sort -u | tr '\n' ' ' || true
}

# A node that can take work: idle, mix, alloc or comp; a '*' suffix (= not responding) does not count.
sinfo_responsive() {
    local s
    s="$(node_states)"
    [[ "$s" =~ (^|[[:space:]])(idle|mix|alloc|comp)([[:space:]]|$) ]]
}

# pid alive (not a zombie: killed daemons are reparented to an init that may reap
# late) and its command name is the expected one (guards against recycled pids)
pid_is() {
    local name="$1" pid="$2" comm stat
    [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
    stat="${stat##*) }" # fields after "pid (comm) "; the first is the state
    [[ "$comm" == "$name" && -n "$stat" && "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# some live (non-zombie) process has this exact command name
any_live() {
    local p
    for p in $(pgrep -x "$1" 2>/dev/null || true); do
        pid_is "$1" "$p" && return 0
    done
    return 1
}

recorded_alive() {
    [[ -s "$PIDS_FILE" ]] || return 1
    local name pid any=1
    while read -r name pid; do
        [[ -n "${pid:-}" ]] || continue
        if pid_is "$name" "$pid"; then any=0; fi
    done <"$PIDS_FILE"
    return $any
}

record_pid() { echo "$1 $2" >>"$PIDS_FILE"; }

munge_works() {
    command -v munge >/dev/null 2>&1 || return 1
    timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1
}

install_packages() {
    if have_binaries; then
        log "Slurm/munge binaries present, skipping apt-get"
        return 0
    fi
    log "installing Debian packages (slurm-wlm slurmctld slurmd slurm-client munge) ..."
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq >"$STATE_DIR/log/apt.log" 2>&1 ||
        { tail -n 20 "$STATE_DIR/log/apt.log" >&2; die "apt-get update failed"; }
    timeout 900 apt-get install -y -qq --no-install-recommends \
        slurm-wlm slurmctld slurmd slurm-client munge >>"$STATE_DIR/log/apt.log" 2>&1 ||
        { tail -n 20 "$STATE_DIR/log/apt.log" >&2; die "apt-get install failed"; }
    have_binaries || die "packages installed but binaries still missing"
    log "packages installed in $((SECONDS - t0)) s"
}

setup_munge() {
    id munge >/dev/null 2>&1 || die "user 'munge' missing (munge package not installed?)"
    install -d -m 0700 -o munge -g munge /etc/munge /var/lib/munge /var/log/munge
    # socket dir: must exist (tmpfs /run), owned by munge, not writable by others
    install -d -m 0755 -o munge -g munge /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating munge key /etc/munge/munge.key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
}

start_munged() {
    if munge_works; then
        log "munged already running and answering: reusing it (not recorded as ours)"
        return 0
    fi
    # a stale socket/pid left by a killed munged makes the new one refuse to start
    if ! any_live munged; then
        rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
    fi
    log "starting munged as user munge"
    # setpriv execs (no fork), so $! is munged's own pid; -F keeps it in the foreground.
    setpriv --reuid=munge --regid=munge --init-groups \
        munged -F >>"$STATE_DIR/log/munged.out" 2>&1 </dev/null 9>&- &
    local pid=$!
    record_pid munged "$pid"
    local i
    for ((i = 0; i < 50; i++)); do
        munge_works && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$STATE_DIR/log/munged.out" >&2 || true
    tail -n 20 /var/log/munge/munged.log >&2 2>/dev/null || true
    die "munged did not come up"
}

write_conf() {
    local cpus mem_total_mb headroom real_mem
    cpus="$(nproc)"
    mem_total_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    headroom="${DEID_SLURM_HEADROOM_MB:-$((mem_total_mb / 10 > 1024 ? mem_total_mb / 10 : 1024))}"
    real_mem=$((mem_total_mb - headroom))
    ((real_mem >= 256)) || real_mem=256
    mkdir -p /etc/slurm
    cat >"$STATE_DIR/slurm.conf" <<EOF
$CONF_MARK ($(date -Is)); state dir $STATE_DIR
ClusterName=deidtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Debian default /bin/mail does not exist: logs an error at every start
MailProg=/bin/true
# keep finished jobs visible to squeue for 5 min: the snakemake plugin's squeue
# status check needs MinJobAge >= 3 x slurm-init-seconds-before-status-checks
MinJobAge=300
# a node that was down comes back as soon as slurmd registers
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -e "$SLURM_CONF_PATH" ]] && ! grep -q "^$CONF_MARK" "$SLURM_CONF_PATH"; then
        cp -p "$SLURM_CONF_PATH" "$STATE_DIR/slurm.conf.orig"
        log "existing $SLURM_CONF_PATH saved to $STATE_DIR/slurm.conf.orig (restored by stop)"
    fi
    cp "$STATE_DIR/slurm.conf" "$SLURM_CONF_PATH"
    log "wrote $SLURM_CONF_PATH (CPUs=$cpus RealMemory=$real_mem MB)"
}

start_daemon() { # name, then command
    local name="$1"
    shift
    log "starting $name"
    "$@" >>"$STATE_DIR/log/$name.out" 2>&1 </dev/null 9>&- &
    record_pid "$name" "$!"
}

wait_ready() {
    local deadline=$((SECONDS + WAIT_S)) s=""
    while ((SECONDS < deadline)); do
        s="$(node_states)"
        if [[ "$s" =~ (^|[[:space:]])idle([[:space:]]|$) ]]; then break; fi
        # fail fast when a daemon we started died
        local name pid
        while read -r name pid; do
            [[ -n "${pid:-}" ]] || continue
            if ! pid_is "$name" "$pid"; then
                tail -n 20 "$STATE_DIR/log/$name.log" "$STATE_DIR/log/$name.out" >&2 2>/dev/null || true
                die "$name (pid $pid) died during start-up; logs in $STATE_DIR/log"
            fi
        done <"$PIDS_FILE"
        sleep 0.5
    done
    if [[ ! "$s" =~ (^|[[:space:]])idle([[:space:]]|$) ]]; then
        timeout 5 sinfo -R >&2 2>/dev/null || true
        tail -n 20 "$STATE_DIR/log/slurmctld.log" "$STATE_DIR/log/slurmd.log" >&2 2>/dev/null || true
        die "node not idle after ${WAIT_S}s (sinfo states: '${s:-no answer}'); logs in $STATE_DIR/log"
    fi
    log "node idle after $((SECONDS - deadline + WAIT_S)) s; checking srun and sbatch"
    local out
    out="$(timeout 30 srun -N1 -n1 -t 1 hostname 2>&1)" || die "srun failed: $out"
    local jid state="" i
    jid="$(timeout 10 sbatch --parsable -t 1 -o "$STATE_DIR/log/sbatch-check.out" --wrap true)" ||
        die "sbatch failed"
    for ((i = 0; i < 60; i++)); do
        state="$(timeout 5 scontrol show job "$jid" 2>/dev/null | grep -o 'JobState=[A-Z_]*' || true)"
        [[ "$state" == JobState=COMPLETED ]] && break
        [[ "$state" =~ JobState=(FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) ]] &&
            die "sbatch check job $jid ended with $state"
        sleep 0.5
    done
    [[ "$state" == JobState=COMPLETED ]] || die "sbatch check job $jid not completed after 30 s ($state)"
    log "srun and sbatch work"
}

# --- subcommands -------------------------------------------------------------

cmd_start() {
    local t0=$SECONDS
    mkdir -p "$STATE_DIR/log"
    exec 9>"$STATE_DIR/lock"
    flock -w 120 9 || die "another cluster.sh holds $STATE_DIR/lock"

    if sinfo_responsive; then
        if recorded_alive; then
            log "cluster already running (started earlier by cluster.sh: $(tr '\n' ' ' <"$PIDS_FILE"))"
        else
            : >"$PIDS_FILE"
            echo "nothing started: a responsive Slurm was already there at $(date -Is)" >"$MARK_FILE"
            log "a responsive Slurm is already running; not starting anything (stop will not touch it)"
        fi
        return 0
    fi
    if recorded_alive; then
        log "daemons from an earlier start are alive but the node is not ready; waiting"
        wait_ready
        return 0
    fi

    : >"$PIDS_FILE"
    rm -f "$MARK_FILE"
    install_packages
    # the Debian postinst must not have started daemons behind our back (policy-rc.d)
    local d
    for d in slurmctld slurmd; do
        if any_live "$d"; then
            die "a $d not started by cluster.sh is running but Slurm does not answer; stop it first"
        fi
    done
    mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/slurmd"
    setup_munge
    start_munged
    write_conf
    # -D: foreground (so $! is the daemon), -c: start from a clean state
    start_daemon slurmctld slurmctld -D -c -f "$SLURM_CONF_PATH"
    # give the controller a moment so slurmd registers at the first try
    local i
    for ((i = 0; i < 40; i++)); do
        [[ "$(timeout 3 scontrol ping 2>/dev/null || true)" == *"is UP"* ]] && break
        sleep 0.25
    done
    # the host is not called "localhost": -N makes slurmd act as NodeName=localhost
    start_daemon slurmd slurmd -D -N localhost -f "$SLURM_CONF_PATH"
    echo "started by cluster.sh at $(date -Is): $(tr '\n' ' ' <"$PIDS_FILE")" >"$MARK_FILE"
    wait_ready
    log "cluster up in $((SECONDS - t0)) s (state dir $STATE_DIR)"
}

cmd_stop() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/lock"
    flock -w 120 9 || die "another cluster.sh holds $STATE_DIR/lock"
    if [[ ! -s "$PIDS_FILE" ]]; then
        log "nothing to stop: cluster.sh did not start any daemon ($(cat "$MARK_FILE" 2>/dev/null || echo 'no record'))"
        rm -f "$MARK_FILE"
        return 0
    fi
    # jobs still running on our own cluster would leave slurmstepd + payload behind
    if pid_is slurmctld "$(awk '$1=="slurmctld"{print $2}' "$PIDS_FILE" | tail -1)" 2>/dev/null; then
        local jobs
        jobs="$(timeout 5 squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %A 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            log "cancelling jobs still on our cluster: $(tr '\n' ' ' <<<"$jobs")"
            # shellcheck disable=SC2086 # one job id per word
            timeout 10 scancel $jobs 2>/dev/null || true
            local i
            for ((i = 0; i < 20; i++)); do
                [[ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null || true)" ]] && break
                sleep 0.5
            done
        fi
    fi
    # stop in reverse start order: slurmd, slurmctld, munged
    local name pid
    tac "$PIDS_FILE" | while read -r name pid; do
        [[ -n "${pid:-}" ]] || continue
        if pid_is "$name" "$pid"; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            local i
            for ((i = 0; i < 30; i++)); do
                pid_is "$name" "$pid" || break
                sleep 0.5
            done
            if pid_is "$name" "$pid"; then
                log "$name (pid $pid) ignored SIGTERM for 15 s; SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        else
            log "$name (pid $pid) already gone"
        fi
    done
    : >"$PIDS_FILE"
    rm -f "$MARK_FILE"
    if [[ -e "$STATE_DIR/slurm.conf.orig" ]]; then
        mv -f "$STATE_DIR/slurm.conf.orig" "$SLURM_CONF_PATH"
        log "restored the original $SLURM_CONF_PATH"
    fi
    log "stopped"
}

cmd_status() {
    local s rc=0
    s="$(node_states)"
    if sinfo_responsive; then
        echo "slurm: responsive (node states: $s)"
    else
        echo "slurm: not responsive${s:+ (node states: $s)}"
        rc=1
    fi
    echo "record: $(cat "$MARK_FILE" 2>/dev/null || echo 'cluster.sh started nothing')"
    if [[ -s "$PIDS_FILE" ]]; then
        local name pid
        while read -r name pid; do
            [[ -n "${pid:-}" ]] || continue
            if pid_is "$name" "$pid"; then echo "  $name pid $pid: running"; else echo "  $name pid $pid: gone"; fi
        done <"$PIDS_FILE"
    fi
    return $rc
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
