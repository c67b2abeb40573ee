#!/bin/sh
# Entrypoint of the pipeline image, for every role: tidy the environment, size
# the process pool to the container's CPUs, then exec the command (so it keeps
# PID 1's place and receives docker's SIGTERM itself).
set -eu

# An empty PIPELINE_* variable means "the default": compose passes optional
# knobs as ${VAR:-}, and the settings would refuse "" where a number belongs.
for name in $(env | sed -n 's/^\(PIPELINE_[A-Z0-9_]*\)=$/\1/p'); do
    unset "$name"
done

# The worker's sizing knobs from .env (empty = automatic).
if [ -n "${WORKER_PROCESSES:-}" ]; then export PIPELINE_PROCESSES="$WORKER_PROCESSES"; fi
if [ -n "${WORKER_CONCURRENCY:-}" ]; then export PIPELINE_CONCURRENCY="$WORKER_CONCURRENCY"; fi

# os.sched_getaffinity (what the runtime counts) sees `cpuset:`, but not a CPU
# quota (`cpus:`, `deploy.resources.limits.cpus`): read the quota from the
# cgroup and take the smaller of the two, rounded up.
if [ -z "${PIPELINE_PROCESSES:-}" ]; then
    cpus=$(nproc)
    quota=""
    period=""
    cpu_max=${CGROUP_CPU_MAX:-/sys/fs/cgroup/cpu.max}
    if [ -r "$cpu_max" ]; then
        read -r quota period <"$cpu_max" || true
    elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then  # cgroup v1
        quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
        period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
    fi
    case "$quota" in
        "" | max | -*) ;;
        *)
            limit=$(((quota + period - 1) / period))
            [ "$limit" -ge 1 ] && [ "$limit" -lt "$cpus" ] && cpus=$limit
            ;;
    esac
    export PIPELINE_PROCESSES="$cpus"
fi

exec "$@"
