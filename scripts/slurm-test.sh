#!/usr/bin/env bash
# Tests `cargo xtask slurm` against a real Slurm (Debian's 22.05), not a mock:
# installs slurmctld, slurmd, slurm-client and munge, writes a one-node
# slurm.conf, starts munged, slurmctld and slurmd directly (no systemd),
# then
#   1. runs a small search as an array of 2 workers + a collect job and
#      checks its table against a local `--jobs 1` run of the same search;
#   2. runs a slower search, cancels one array task mid-trial (scancel sends
#      SIGTERM: the task must free its claim and say so), checks that the
#      other worker redoes the trial, and that the table is again the local
#      one;
# and stops the daemons it started, by pid, also on failure.
# Needs root and apt-get (skips with a message otherwise). Data: a generated
# data set in the CIFAR-10 layout (no download). `.ci/run` calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm-test: skipping: needs root and apt-get to install Slurm"
    exit 0
fi

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "slurm-test: $*"; }

work="$(mktemp -d /tmp/slurm-test.XXXXXX)"
daemon_pids=()
cleanup() {
    status=$?
    # After a failure jobs may still run: cancel them while slurmctld is up.
    if [ "${#daemon_pids[@]}" -ge 3 ]; then
        squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
        for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
    fi
    for pid in "${daemon_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${daemon_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$status" != 0 ]; then
        say "FAILED; logs:"
        for f in "$work"/slurmctld.log "$work"/slurmd.log "$work"/*/*/slurm/*.out; do
            [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; }
        done
    fi
    rm -rf "$work"
    [ "${#daemon_pids[@]}" = 0 ] || say "stopped the daemons (pids ${daemon_pids[*]})"
    exit "$status"
}
trap cleanup EXIT

# Build first, so the Slurm timings below are Slurm's.
cargo build --release -q -p xtask
cargo build --release -q -p experiment --example synthetic_data
xtask="$root/target/release/xtask"
"$root/target/release/examples/synthetic_data" "$work/data" >/dev/null

# --- Install and start Slurm -------------------------------------------------
t_install="$(now)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
say "installed $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null) in $(seconds_since "$t_install") s"

t_start="$(now)"
# munged runs as user munge with its key owned by munge, mode 0400.
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
# setpriv execs munged in place, so $! is munged's pid.
setpriv --reuid munge --regid munge --init-groups munged --foreground >"$work/munged.log" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done

host="$(hostname -s)"
node_line="$(slurmd -C | head -n 1)"
export SLURM_CONF="$work/slurm.conf"
mkdir -p "$work/state" "$work/spool"
cat >"$SLURM_CONF" <<CONF
ClusterName=cifarclr
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
KillWait=5
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
$node_line State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -i >/dev/null 2>&1 &
daemon_pids+=($!)
slurmd -D >/dev/null 2>&1 &
daemon_pids+=($!)
for _ in $(seq 300); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
    sleep 0.1
done
[ "$(sinfo -h -o %T)" = idle ] || { say "the node never became idle"; exit 1; }
say "munged, slurmctld, slurmd started (pids ${daemon_pids[*]}); node idle after $(seconds_since "$t_start") s" \
    "(install + start $(seconds_since "$t_install") s)"

# --- Searches ----------------------------------------------------------------
# write_config NAME N_S: a 4-trial search on batch 1 (train) and 2 (validation).
write_config() {
    cat >"$work/$1.toml" <<CONF
name = "$1"
seed = 3
seeds_per_lambda = 1
evaluate_test = false

[data]
kind = "batches"
train = [1]
validation = [2]

[train]
n_hidden = 20
batch_size = 50
records_per_cycle = 1

[train.schedule]
kind = "triangular"
eta_min = 1e-5
eta_max = 0.05
n_s = $2
n_cycles = 1

[lambdas]
kind = "log_uniform"
n = 4
log10_min = -5.0
log10_max = -1.0
CONF
}
# The table without its timing column (the last, wall_seconds).
untimed() { cut -d, -f1-10 "$1"; }
# wait_job ID: until the job has left the queue; prints its final state.
job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
wait_gone() {
    for _ in $(seq 6000); do
        [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    say "job $1 still queued after 600 s"; squeue -j "$1"; return 1
}
submit() { # submit CONFIG RESULTS LEASE: prints "WORKERS COLLECT"
    "$xtask" slurm "$1" --array 2 --cpus-per-task 1 --time 0:10:00 --lease-seconds "$3" \
        --data-dir "$work/data" --results-dir "$2" >"$2.submit.log"
    cat "$2.submit.log" >&2
    echo "$(sed -n 's/^submitted workers: job \([0-9]*\).*/\1/p' "$2.submit.log")" \
         "$(sed -n 's/^submitted collect: job \([0-9]*\).*/\1/p' "$2.submit.log")"
}

# 1. Two workers + collect give the local table.
write_config tiny 200
"$xtask" coarse-search --config "$work/tiny.toml" --data-dir "$work/data" \
    --results-dir "$work/local" --jobs 1 >"$work/local-tiny.log"
t_array="$(now)"
read -r wid cid < <(submit "$work/tiny.toml" "$work/slurm" 10)
wait_gone "$wid"
wait_gone "$cid"
state="$(job_state "$cid")"
[ "$state" = COMPLETED ] || { say "collect job $cid ended $state"; exit 1; }
say "array of 2 workers + collect: $(seconds_since "$t_array") s from submission to the collected table"
diff <(untimed "$work/local/tiny/table.csv") <(untimed "$work/slurm/tiny/table.csv")
for task in 0 1; do
    grep -h "no trial left" "$work/slurm/tiny/slurm/workers-${wid}_$task.out"
done
say "PASS: the array's table equals the local --jobs 1 table (timing column apart)"

# 2. A worker cancelled mid-trial: its trial is taken over and redone.
# 6000 steps: about 2 s a trial on a Zen 5 (1500 steps took 0.5 s there and
# finished before a cancel 1 s after the claim).
write_config slow 6000
"$xtask" coarse-search --config "$work/slow.toml" --data-dir "$work/data" \
    --results-dir "$work/local" --jobs 2 >"$work/local-slow.log"
lease=4
read -r wid cid < <(submit "$work/slow.toml" "$work/slurm" "$lease")
runs="$work/slurm/slow/runs"
claim=""
for _ in $(seq 1200); do
    claim="$(grep -l "\"job\":\"${wid}_1\"" "$runs"/*.claim.* 2>/dev/null | head -n 1 || true)"
    [ -n "$claim" ] && break
    sleep 0.1
done
[ -n "$claim" ] || { say "task ${wid}_1 never claimed a trial"; exit 1; }
trial="$(basename "$claim" | sed 's/\.claim\..*//')"
sleep 0.2   # well inside the trial (seconds long)
[ ! -f "$runs/$trial/summary.csv" ] || { say "$trial finished before the cancel"; exit 1; }
t_cancel="$(now)"
scancel "${wid}_1"
say "cancelled task ${wid}_1 during $trial"
wait_gone "$wid"
wait_gone "$cid"
# scancel sends SIGTERM first: the worker frees its claim and says so, and
# the other task claims the trial at once (no lease to wait for). Had it died
# without the handler (SIGKILL), the other task would take the claim over
# after the lease instead.
grep -h "^interrupted:" "$work/slurm/slow/slurm/workers-${wid}_1.out"
if grep -q "taking over the claim of .*Slurm job ${wid}_1" "$work/slurm/slow/slurm/workers-${wid}_0.out"; then
    how="taken over after the lease"
else
    how="claimed at once (the cancelled task freed it on SIGTERM)"
fi
say "$trial $how and redone; the array ended $(seconds_since "$t_cancel") s after the cancel (lease $lease s)"
[ -f "$runs/$trial/summary.csv" ]
# The cancelled task fails `afterok`, so the collect job is cancelled with it
# (--kill-on-invalid-dep=yes) rather than pending for ever; collect by hand.
say "collect job $cid ended $(job_state "$cid") (expected: CANCELLED, its dependency failed)"
"$xtask" collect "$work/slurm/slow" >/dev/null
diff <(untimed "$work/local/slow/table.csv") <(untimed "$work/slurm/slow/table.csv")
say "PASS: with a task cancelled mid-trial the trial was redone and the table equals the local one"
