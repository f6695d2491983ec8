#!/bin/sh
# Capture hook for Redis (mirrortwin agent --capture hook): dump the dataset with BGSAVE and exit 0 only
# once *this* call's BGSAVE has completed, so the dump file (Redis renames it into place) is the state.
#
# Usage: redis-bgsave.sh PORT [HOST]     (HOST defaults to 127.0.0.1; REDISCLI_AUTH is honoured)
# Agent: --hook-cmd "sh realworld/agent/hooks/redis-bgsave.sh 6379" --hook-output /var/lib/redis/dump.rdb
#
# A BGSAVE already running when we are called started before the request, so we wait for it and start
# our own. Exits 1 with one line on stderr when Redis refuses or the save fails; the agent's timeout
# bounds everything else.
set -eu
port=$1
host=${2:-127.0.0.1}

cli() { redis-cli --no-raw -h "$host" -p "$port" "$@"; }
field() { redis-cli -h "$host" -p "$port" INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }

before=$(field rdb_saves)
if [ -z "$before" ]; then
    echo "redis at $host:$port: INFO persistence unreadable (is it Redis >= 7 and reachable?)" >&2
    exit 1
fi
while :; do
    reply=$(cli BGSAVE 2>&1 || true)
    case $reply in
        *"Background saving started"*) break ;;
        *"in progress"* | *"child process"*) sleep 0.05 ;;
        *) echo "redis at $host:$port: BGSAVE refused: $reply" >&2; exit 1 ;;
    esac
done
while [ "$(field rdb_bgsave_in_progress)" != "0" ]; do
    sleep 0.05
done
if [ "$(field rdb_saves)" -le "$before" ] || [ "$(field rdb_last_bgsave_status)" != "ok" ]; then
    echo "redis at $host:$port: BGSAVE failed (rdb_last_bgsave_status: $(field rdb_last_bgsave_status))" >&2
    exit 1
fi
