#!/usr/bin/env bash
# Runs Ordo's local stack in the foreground for development: every service binary plus the gateway,
# each line of their (pretty) logs prefixed with the service name. Ctrl-C, or any one process
# exiting, stops them all with SIGTERM (their graceful-shutdown path) and waits for them.
#
# Normally started by `just dev`, which builds the binaries and runs the migrations first and passes
# the addresses below. Expects MariaDB, Redis and RabbitMQ on localhost (`just services`).
#
# Environment (defaults are the binaries' own):
#   IDENTITY_GRPC_ADDR 127.0.0.1:50051   IDENTITY_OPS_ADDR 127.0.0.1:9101
#   PROJECT_GRPC_ADDR  127.0.0.1:50052   PROJECT_OPS_ADDR  127.0.0.1:9102
#   TASK_GRPC_ADDR     127.0.0.1:50053   TASK_OPS_ADDR     127.0.0.1:9103
#   NOTIFICATION_GRPC_ADDR 127.0.0.1:50054   NOTIFICATION_OPS_ADDR 127.0.0.1:9104
#   AUDIT_GRPC_ADDR    127.0.0.1:50055   AUDIT_OPS_ADDR    127.0.0.1:9105
#   GATEWAY_HTTP_ADDR  127.0.0.1:8080
#   ORDO_LOG_FORMAT pretty, RUST_LOG info (both passed through to every process)
#   ORDO_GRPC_REFLECTION true: the services serve gRPC reflection (for grpcurl), which is off by
#   default everywhere else because it lists every RPC to anyone who can reach the port
#   ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS true: identity keeps its signing keys unencrypted (development
#   only; with ORDO_KEY_ENCRYPTION_KEY set they are sealed instead, as deployed)
#   ORDO_REDIS_URL / ORDO_AMQP_URL, if set, pass through as well. So would ORDO_DATABASE_URL, but it
#   names one service's schema: leave it unset here (each binary defaults to its own ordo_<svc>).
set -euo pipefail

cd "$(dirname "$0")/../.."

bin_dir="${CARGO_TARGET_DIR:-target}/debug"
export ORDO_LOG_FORMAT="${ORDO_LOG_FORMAT:-pretty}"
export RUST_LOG="${RUST_LOG:-info}"
export ORDO_GRPC_REFLECTION="${ORDO_GRPC_REFLECTION:-true}"
# As deployed (deploy/ecs/README.md): no transparent huge pages for the allocator, freed memory returned at once.
export MIMALLOC_ALLOW_THP="${MIMALLOC_ALLOW_THP:-0}" MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}"

IDENTITY_GRPC_ADDR="${IDENTITY_GRPC_ADDR:-127.0.0.1:50051}"
IDENTITY_OPS_ADDR="${IDENTITY_OPS_ADDR:-127.0.0.1:9101}"
PROJECT_GRPC_ADDR="${PROJECT_GRPC_ADDR:-127.0.0.1:50052}"
PROJECT_OPS_ADDR="${PROJECT_OPS_ADDR:-127.0.0.1:9102}"
TASK_GRPC_ADDR="${TASK_GRPC_ADDR:-127.0.0.1:50053}"
TASK_OPS_ADDR="${TASK_OPS_ADDR:-127.0.0.1:9103}"
NOTIFICATION_GRPC_ADDR="${NOTIFICATION_GRPC_ADDR:-127.0.0.1:50054}"
NOTIFICATION_OPS_ADDR="${NOTIFICATION_OPS_ADDR:-127.0.0.1:9104}"
AUDIT_GRPC_ADDR="${AUDIT_GRPC_ADDR:-127.0.0.1:50055}"
AUDIT_OPS_ADDR="${AUDIT_OPS_ADDR:-127.0.0.1:9105}"
GATEWAY_HTTP_ADDR="${GATEWAY_HTTP_ADDR:-127.0.0.1:8080}"

# Fail early with a hint instead of a wall of connection errors from every service.
bash deploy/scripts/local-services.sh --check

# Job control: each background job below gets its own process group. Ctrl-C then reaches only this
# script (the terminal's foreground group), and the trap sends SIGTERM to each group: the service
# and its log prefixer, nothing else (not `just`, which shares our group).
set -m

color=false
if [[ -t 1 ]]; then
  color=true
  # The services write into a pipe (the prefixer), so tell them a terminal reads it in the end.
  export CLICOLOR_FORCE=1
fi
n=0

# start NAME BINARY [VAR=value ...] — run BINARY with those variables set, in the background,
# prefixing each line of its output with NAME.
start() {
  local name=$1 exe=$2
  shift 2
  if [[ ! -x $exe ]]; then
    echo "dev: $exe is missing; build first (just build, or just dev)" >&2
    exit 1
  fi
  local prefix
  if $color; then
    prefix=$(printf '\033[%dm%-8s\033[0m| ' $((31 + n % 6)) "$name")
  else
    prefix=$(printf '%-8s| ' "$name")
  fi
  n=$((n + 1))
  # stdin from /dev/null: a background job that touches the terminal would be stopped (SIGTTIN).
  # sed -u: unbuffered, so lines from different services interleave in real time.
  env "$@" "$exe" </dev/null 2>&1 | sed -u "s/^/${prefix//\//\\/}/" &
  # The job's process group leader is the pipeline's first process: the service itself.
  echo "dev: started $name (pid $(jobs -p %+))" >&2
}

# Sends signal $1 to every job's whole process group (the service and its log prefixer).
# shellcheck disable=SC2329 # invoked from the traps
kill_groups() {
  local pg
  for pg in $(jobs -p); do kill "-$1" -- "-$pg" 2>/dev/null || true; done
}

# shellcheck disable=SC2329 # invoked by the EXIT trap
stop_all() {
  trap - EXIT
  # A second Ctrl-C while draining: stop waiting, kill everything.
  trap 'echo "dev: killing" >&2; kill_groups KILL' INT TERM
  # Job notices ("Terminated ...") would only add noise from here on; and no errexit while
  # cleaning up (a second Ctrl-C also interrupts the `sleep` below).
  set +m +e
  local leaders pid
  leaders=$(jobs -p)
  if [[ -n $leaders ]]; then
    echo "dev: stopping: SIGTERM to every service (Ctrl-C again to kill)" >&2
    # SIGTERM to the service only, not its group: the prefixer keeps running until the service
    # closes its output, so the shutdown logs still show.
    for pid in $leaders; do kill -TERM "$pid" 2>/dev/null || true; done
    # The same 30 s grace period as compose.yaml and ECS, then SIGKILL.
    for _ in $(seq 300); do
      [[ -z $(jobs -pr) ]] && break
      sleep 0.1
    done
    kill_groups KILL
    wait 2>/dev/null || true
  fi
  echo "dev: stopped" >&2
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- One block per process. A new service: copy the identity block (its own ports, see justfile). --
# identity keeps its token signing keys in its schema; here unencrypted, as only development may (set
# ORDO_KEY_ENCRYPTION_KEY to seal them as deployments do).
start identity "$bin_dir/ordo-identity" \
  ORDO_GRPC_ADDR="$IDENTITY_GRPC_ADDR" \
  ORDO_OPS_ADDR="$IDENTITY_OPS_ADDR" \
  ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS="${ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS:-true}"

# project fetches identity's token keys at start; if identity is not up yet it retries in the
# background (and its /readyz says not ready until the keys arrive).
start project "$bin_dir/ordo-project" \
  ORDO_GRPC_ADDR="$PROJECT_GRPC_ADDR" \
  ORDO_OPS_ADDR="$PROJECT_OPS_ADDR" \
  ORDO_IDENTITY_URL="http://$IDENTITY_GRPC_ADDR"

# task asks project for access (CheckAccess) and keeps attachment bytes in the local S3-compatible
# server (moto on 127.0.0.1:9000, started by `just services`; any credentials work there).
start task "$bin_dir/ordo-task" \
  ORDO_GRPC_ADDR="$TASK_GRPC_ADDR" \
  ORDO_OPS_ADDR="$TASK_OPS_ADDR" \
  ORDO_IDENTITY_URL="http://$IDENTITY_GRPC_ADDR" \
  ORDO_PROJECT_URL="http://$PROJECT_GRPC_ADDR" \
  ORDO_S3_ACCESS_KEY_ID="${ORDO_S3_ACCESS_KEY_ID:-ordo-local}" \
  ORDO_S3_SECRET_ACCESS_KEY="${ORDO_S3_SECRET_ACCESS_KEY:-ordo-local}"

# notification turns identity's, project's and task's events into each user's notifications, mails
# them through the local SES stand-in (moto on 127.0.0.1:9002), sends due-date reminders, and posts
# project events to their webhooks (here also to receivers on this machine).
start notification "$bin_dir/ordo-notification" \
  ORDO_GRPC_ADDR="$NOTIFICATION_GRPC_ADDR" \
  ORDO_OPS_ADDR="$NOTIFICATION_OPS_ADDR" \
  ORDO_IDENTITY_URL="http://$IDENTITY_GRPC_ADDR" \
  ORDO_PROJECT_URL="http://$PROJECT_GRPC_ADDR" \
  ORDO_WEBHOOK_ALLOW_LOOPBACK="${ORDO_WEBHOOK_ALLOW_LOOPBACK:-true}" \
  ORDO_SES_ACCESS_KEY_ID="${ORDO_SES_ACCESS_KEY_ID:-ordo-local}" \
  ORDO_SES_SECRET_ACCESS_KEY="${ORDO_SES_SECRET_ACCESS_KEY:-ordo-local}"

# audit consumes every event from the exchange into its hash-chained log and answers queries on
# gRPC, asking project who manages which project.
start audit "$bin_dir/ordo-audit" \
  ORDO_GRPC_ADDR="$AUDIT_GRPC_ADDR" \
  ORDO_OPS_ADDR="$AUDIT_OPS_ADDR" \
  ORDO_IDENTITY_URL="http://$IDENTITY_GRPC_ADDR" \
  ORDO_PROJECT_URL="http://$PROJECT_GRPC_ADDR"

# The gateway last: it talks to the services (and retries), so they should be on their way up.
start gateway "$bin_dir/ordo-gateway" \
  ORDO_HTTP_ADDR="$GATEWAY_HTTP_ADDR" \
  ORDO_IDENTITY_URL="http://$IDENTITY_GRPC_ADDR" \
  ORDO_PROJECT_URL="http://$PROJECT_GRPC_ADDR" \
  ORDO_TASK_URL="http://$TASK_GRPC_ADDR" \
  ORDO_NOTIFICATION_URL="http://$NOTIFICATION_GRPC_ADDR" \
  ORDO_AUDIT_URL="http://$AUDIT_GRPC_ADDR"

echo "dev: gateway on http://$GATEWAY_HTTP_ADDR (/healthz, /readyz, /metrics, /api/v1); Ctrl-C stops all" >&2

# Return as soon as any one process ends (a crash, a port in use): the EXIT trap stops the rest.
status=0
wait -n || status=$?
echo "dev: a process exited (status $status); stopping the others" >&2
exit "$status"
