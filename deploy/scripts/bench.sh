#!/usr/bin/env bash
# Load benchmarks (`just bench`): builds in release, starts identity, the project and task services,
# audit and the gateway against the local MariaDB, Redis and RabbitMQ (own schemas, Redis prefix and exchange, so a
# `just dev` stack is left alone), drives load from a separate process — `oha` for HTTP, the
# project crate's `access_load` example (tonic + HdrHistogram) for gRPC `CheckAccess`, the task crate's
# `task_seed` to fill a project, the gateway's `move_load` for task moves (a body per request) — and
# writes the figures to BENCHMARKS.md.
#
# Every scenario runs beside a reference measured in the same run: a bare axum handler answering the
# same JSON on the same machine (gateway/examples/reference.rs), so each figure reads as a ratio to
# that ceiling. Load generator, stack and backends share this machine's cores; compare figures only
# between runs on the same machine.
#
# Environment: BENCH_DURATION (default 15s), BENCH_CONNECTIONS (64), BENCH_LOGIN_RATE (20 per second),
# BENCH_AUDIT_EVENTS (20000), BENCH_AUDIT_CONSUMERS (2) and BENCH_AUDIT_BATCH (128): the audit service's
# --consumers and --append-batch; BENCH_TASKS (10000): tasks seeded in the listed project;
# BENCH_BOARD_TASKS (200): the board the move scenario shuffles; BENCH_HOSTILE_REQUESTS (2000): hostile
# bodies sent by the hostile scenario.
#
# `just bench` runs every scenario and rewrites BENCHMARKS.md. `just bench audit` builds and starts only
# identity (audit's readiness needs its keys) and audit, runs the audit scenario, and replaces only the
# audit section of BENCHMARKS.md. `just bench tasks` starts identity, audit, the project and task
# services, the gateway and the reference server, runs the task scenarios (seed, create, get, list,
# move, search, the flow report) beside the reference, and replaces only the tasks section of BENCHMARKS.md. `just bench hostile`
# starts the same stack, sends hostile bodies (a task with 150,000 labels) and reports the CPU time the
# processes spent refusing each, replacing only that section. `just bench notifications` starts the
# same stack and measures the notification service: consumer throughput (BENCH_NOTIFICATIONS events,
# default 10000, all for one user), `GET /notifications` of that user (at saturation, and at a steady
# BENCH_LIST_RATE requests per second, 1000), and the live stream's latency at
# BENCH_EVENT_RATE task events per second (200) with BENCH_SSE_STREAMS other streams open (10000),
# with the gateway's and the service's memory; it replaces only that section. `just bench webhooks`
# measures a project's webhook: delivery throughput to a receiver on loopback (BENCH_WEBHOOK_EVENTS
# events published to the exchange, default 5000) and the latency from a task create's commit to
# its delivery at BENCH_WEBHOOK_RATE creates per second (200); it replaces only that section.
set -euo pipefail

scenario="${1:-all}"
case "$scenario" in
  all | audit | tasks | hostile | notifications | webhooks) ;;
  *)
    echo "bench: unknown scenario '$scenario' (all, audit, tasks, hostile, notifications, webhooks)" >&2
    exit 2
    ;;
esac

cd "$(dirname "$0")/../.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# Thousands of open streams are as many sockets in the load generator and the gateway (children of
# this shell inherit the limit).
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

duration="${BENCH_DURATION:-15s}"
connections="${BENCH_CONNECTIONS:-64}"
login_rate="${BENCH_LOGIN_RATE:-20}"
out_dir="target/bench"
mkdir -p "$out_dir"

if [[ $scenario != audit ]] && ! command -v oha >/dev/null; then
  echo "bench: installing the load generator oha from crates.io (a few minutes, once)" >&2
  cargo install --locked oha
fi

echo "bench: building release binaries and the reference server" >&2
if [[ $scenario == all ]]; then
  cargo build --release --bin ordo-identity --bin ordo-project --bin ordo-task --bin ordo-audit --bin ordo-notification --bin ordo-gateway \
    --example reference --example access_load --example audit_load --example task_seed --example move_load \
    --example notification_load --example sse_load --example webhook_load
elif [[ $scenario == notifications ]]; then
  cargo build --release --bin ordo-identity --bin ordo-project --bin ordo-task --bin ordo-audit --bin ordo-notification --bin ordo-gateway \
    --example reference --example notification_load --example sse_load
elif [[ $scenario == webhooks ]]; then
  cargo build --release --bin ordo-identity --bin ordo-project --bin ordo-task --bin ordo-audit --bin ordo-notification --bin ordo-gateway \
    --example reference --example webhook_load
elif [[ $scenario == tasks || $scenario == hostile ]]; then
  cargo build --release --bin ordo-identity --bin ordo-project --bin ordo-task --bin ordo-audit --bin ordo-notification --bin ordo-gateway \
    --example reference --example task_seed --example move_load
else
  cargo build --release -p ordo-identity -p ordo-audit --bin ordo-identity --bin ordo-audit --example audit_load
fi

bash deploy/scripts/local-services.sh --check
bin="${CARGO_TARGET_DIR:-target}/release"

# Private names and ports: a fresh schema per run, so figures do not depend on earlier runs.
schema=ordo_bench_identity
project_schema=ordo_bench_project
audit_schema=ordo_bench_audit
task_schema=ordo_bench_task
notification_schema=ordo_bench_notification
for db in "$schema" "$project_schema" "$audit_schema" "$task_schema" "$notification_schema"; do
  mariadb -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db" 2>/dev/null \
    || mysql -uroot -h127.0.0.1 -e "DROP DATABASE IF EXISTS $db"
done
export ORDO_DATABASE_URL="mysql://root@127.0.0.1:3306/$schema"
export ORDO_REDIS_PREFIX="ordo:bench:"
export ORDO_EVENTS_EXCHANGE="ordo.bench.events"
export ORDO_GRPC_ADDR=127.0.0.1:50151 ORDO_OPS_ADDR=127.0.0.1:19101
export ORDO_HTTP_ADDR=127.0.0.1:18080 ORDO_IDENTITY_URL=http://127.0.0.1:50151
export ORDO_PROJECT_URL=http://127.0.0.1:50152 ORDO_AUDIT_URL=http://127.0.0.1:50155
export ORDO_TASK_URL=http://127.0.0.1:50153 ORDO_NOTIFICATION_URL=http://127.0.0.1:50154
export ORDO_LOG_FORMAT=json RUST_LOG=${BENCH_RUST_LOG:-warn}
# The allocator's settings as deployed (deploy/ecs/README.md).
export MIMALLOC_ALLOW_THP="${MIMALLOC_ALLOW_THP:-0}" MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-0}"
redis-cli --scan --pattern 'ordo:bench:*' | xargs -r redis-cli del >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The signing keys of a bench run guard nothing: kept plain, as in development.
ORDO_ALLOW_PLAINTEXT_SIGNING_KEYS=true "$bin/ordo-identity" >"$out_dir/identity.log" 2>&1 &
pids+=($!)
identity_pid=$!
audit_consumers="${BENCH_AUDIT_CONSUMERS:-2}"
audit_batch="${BENCH_AUDIT_BATCH:-128}"
ORDO_DATABASE_URL="mysql://root@127.0.0.1:3306/$audit_schema" ORDO_EVENTS_QUEUE=ordo.bench.audit.events \
  ORDO_AUDIT_CONSUMERS="$audit_consumers" ORDO_AUDIT_APPEND_BATCH="$audit_batch" \
  ORDO_GRPC_ADDR=127.0.0.1:50155 ORDO_OPS_ADDR=127.0.0.1:19105 "$bin/ordo-audit" >"$out_dir/audit.log" 2>&1 &
pids+=($!)
audit_pid=$!
if [[ $scenario != audit ]]; then
  ORDO_DATABASE_URL="mysql://root@127.0.0.1:3306/$project_schema" ORDO_EVENTS_QUEUE=ordo.bench.project.events \
    ORDO_GRPC_ADDR=127.0.0.1:50152 ORDO_OPS_ADDR=127.0.0.1:19102 "$bin/ordo-project" >"$out_dir/project.log" 2>&1 &
  pids+=($!)
  project_pid=$!
  # Attachments are not benchmarked, but the task service wants a bucket: its own, on the local
  # S3-compatible server (which takes any credentials).
  # start_task [VAR=value...]: starts the task service with these settings added (appending to its log).
  start_task() {
    env ORDO_DATABASE_URL="mysql://root@127.0.0.1:3306/$task_schema" ORDO_EVENTS_QUEUE=ordo.bench.task.events \
      ORDO_GRPC_ADDR=127.0.0.1:50153 ORDO_OPS_ADDR=127.0.0.1:19103 ORDO_S3_ENDPOINT=http://127.0.0.1:9000 \
      ORDO_S3_BUCKET=ordo-bench-attachments ORDO_S3_ACCESS_KEY_ID=bench ORDO_S3_SECRET_ACCESS_KEY=bench \
      "$@" "$bin/ordo-task" >>"$out_dir/task.log" 2>&1 &
    pids+=($!)
    task_pid=$!
  }
  : >"$out_dir/task.log"
  start_task
  # One bench user holds the thousands of streams of the notifications scenario; mail goes to the local
  # SES stand-in.
  ORDO_DATABASE_URL="mysql://root@127.0.0.1:3306/$notification_schema" ORDO_EVENTS_QUEUE=ordo.bench.notification.events \
    ORDO_GRPC_ADDR=127.0.0.1:50154 ORDO_OPS_ADDR=127.0.0.1:19104 ORDO_MAX_STREAMS_PER_USER=65535 \
    ORDO_WEBHOOK_ALLOW_LOOPBACK=true \
    ORDO_SES_ACCESS_KEY_ID=bench ORDO_SES_SECRET_ACCESS_KEY=bench \
    "$bin/ordo-notification" >"$out_dir/notification.log" 2>&1 &
  pids+=($!)
  notification_pid=$!
  # The bench is one user (and one address) at thousands of requests per second: far past any real
  # budget. The limiter still runs on every request, so its cost is in the figures.
  # Every load comes from 127.0.0.1, as it would from a load balancer: no per-address connection cap.
  ORDO_RATE_LIMIT_READ=1000000000 ORDO_RATE_LIMIT_WRITE=1000000000 ORDO_RATE_LIMIT_COSTLY=1000000000 \
    ORDO_RATE_LIMIT_CREDENTIALS=1000000000 ORDO_RATE_LIMIT_EMAIL_LOOKUP=1000000000 ORDO_MAX_CONNECTIONS_PER_IP=1000000 \
    "$bin/ordo-gateway" >"$out_dir/gateway.log" 2>&1 &
  pids+=($!)
  gateway_pid=$!
  "$bin/examples/reference" 127.0.0.1:18090 >"$out_dir/reference.log" 2>&1 &
  pids+=($!)
fi

# Resident memory (VmRSS) of every Ordo process running, one JSON line per checkpoint: idle (started,
# before any request) and at the end of each scenario.
memory_log="$out_dir/memory.jsonl"
: >"$memory_log"
# Beside the whole RSS, its anonymous part (heap, stacks: what the process itself allocated; the rest
# is the binary's and libraries' pages, shared by every instance of a binary on a host).
rss_mark() {
  local field key sep name pid_var
  {
    printf '{"checkpoint": "%s"' "$1"
    for field in VmRSS RssAnon; do
      key=rss_kib
      [[ $field == RssAnon ]] && key=anon_kib
      printf ', "%s": {' "$key"
      sep=''
      for name in identity project task audit notification gateway; do
        pid_var="${name}_pid"
        [[ -n "${!pid_var:-}" && -r "/proc/${!pid_var}/status" ]] || continue
        printf '%s"%s": %s' "$sep" "$name" "$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/${!pid_var}/status")"
        sep=', '
      done
      printf '}'
    done
    printf '}\n'
  } >>"$memory_log"
}

# CPU time (user + system, in clock ticks) of every Ordo process and of the backends, as one JSON
# object: taken before and after each scenario, the difference over the requests is where a
# request's CPU goes (cpu.jsonl, one line per scenario).
cpu_log="$out_dir/cpu.jsonl"
: >"$cpu_log"
ticks_of() {  # ticks_of <pid>...: the summed utime + stime of the processes (fields 14 and 15)
  local pid total=0
  for pid in "$@"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$total"
}
cpu_now() {
  local name pid_var sep=''
  printf '{'
  for name in identity project task audit notification gateway; do
    pid_var="${name}_pid"
    [[ -n "${!pid_var:-}" ]] || continue
    printf '%s"%s": %s' "$sep" "$name" "$(ticks_of "${!pid_var}")"
    sep=', '
  done
  # The shared backends, by their process names.
  printf ', "mariadb": %s' "$(ticks_of $(pgrep -x mariadbd || true))"
  printf ', "redis": %s' "$(ticks_of $(pgrep -x redis-server || true))"
  printf ', "rabbitmq": %s' "$(ticks_of $(pgrep -x beam.smp || true))"
  printf '}'
}
# MariaDB's server-wide counters of statements, rows and log flushes, as one JSON object: before and
# after each task scenario, the difference over the requests is what a request asks of the database
# (every schema of the machine counts, so it reads true only while nothing else uses the server).
db_counters='Questions Com_stmt_execute Com_select Com_insert Com_update Com_delete Com_commit Rows_read Handler_write Handler_update Handler_delete Innodb_data_fsyncs'
db_now() {
  local names client=mariadb status
  command -v mariadb >/dev/null || client=mysql
  names=$(printf "'%s'," $db_counters)
  # Without an answer the object is empty, and the report leaves the scenario out of the table.
  if status=$("$client" -uroot -h127.0.0.1 -N -B -e "SHOW GLOBAL STATUS WHERE Variable_name IN (${names%,})" 2>/dev/null); then
    printf '%s\n' "$status" \
      | awk 'BEGIN { printf "{" } NF == 2 { printf "%s\"%s\": %s", (n++ ? ", " : ""), $1, $2 } END { printf "}" }'
  else
    printf '{}'
  fi
}
cpu_mark() {  # cpu_mark <scenario> <object from cpu_now at its start> [<object from db_now at its start>]
  local db_start=${3:-}
  [[ -n $db_start ]] || db_start='{}'
  printf '{"scenario": "%s", "hz": %s, "start": %s, "end": %s, "db_start": %s, "db_end": %s}\n' "$1" \
    "$(getconf CLK_TCK)" "$2" "$(cpu_now)" "$db_start" "$(db_now)" >>"$cpu_log"
}

wait_ready() {
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "bench: $1 never became ready" >&2
  exit 1
}
wait_ready http://127.0.0.1:19101/readyz
wait_ready http://127.0.0.1:19105/readyz

if [[ $scenario != audit ]]; then
  wait_ready http://127.0.0.1:19102/readyz
  wait_ready http://127.0.0.1:19103/readyz
  wait_ready http://127.0.0.1:19104/readyz
  wait_ready http://127.0.0.1:18080/readyz
fi
rss_mark idle

if [[ $scenario != audit ]]; then

  base=http://127.0.0.1:18080/api/v1
  password='bench password 1234'
  curl -fsS -o /dev/null -X POST "$base/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"password\":\"$password\",\"display_name\":\"Bench\"}"
  login_body="{\"email\":\"bench@example.com\",\"password\":\"$password\"}"
  token=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' -d "$login_body" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

  # Ids of this run read better as their role in the report (sed expressions, added as they appear).
  redact=''
  # oha writes one JSON summary per run.
  run() {
    local name=$1
    shift
    echo "bench: $name: oha $*" >&2
    # The token is a secret of this run only, but keep it out of the report all the same.
    echo "oha $*" | sed -E "s/Bearer [^ ]+/Bearer <token>/; $redact" >"$out_dir/$name.cmd"
    local cpu_start db_start
    cpu_start=$(cpu_now)
    db_start=$(db_now)
    oha --no-tui -w --output-format json "$@" >"$out_dir/$name.json"
    cpu_mark "$name" "$cpu_start" "$db_start"
    rss_mark "$name"
  }

  # Warm-up: connection pools, caches, branch predictors.
  oha --no-tui -z 3s -c "$connections" -H "Authorization: Bearer $token" "$base/users/me" >/dev/null

  run reference -z "$duration" -c "$connections" http://127.0.0.1:18090/api/v1/users/me
fi

if [[ $scenario == all ]]; then
  run users_me -z "$duration" -c "$connections" -H "Authorization: Bearer $token" "$base/users/me"
  run login -z "$duration" -c "$login_rate" -q "$login_rate" -m POST -H 'Content-Type: application/json' \
    -d "$login_body" "$base/auth/login"

  # Login at a steady rate while /users/me runs flat out: does reading keep its throughput?
  echo "bench: mixed: /users/me flat out with $login_rate logins/s beside it" >&2
  echo "oha -z $duration -c $connections -H 'Authorization: Bearer <token>' $base/users/me  +  oha -z $duration -c $login_rate -q $login_rate -m POST ... $base/auth/login" \
    >"$out_dir/mixed.cmd"
  oha --no-tui -w --output-format json -z "$duration" -c "$connections" -H "Authorization: Bearer $token" \
    "$base/users/me" >"$out_dir/mixed_users_me.json" &
  me_pid=$!
  oha --no-tui -w --output-format json -z "$duration" -c "$login_rate" -q "$login_rate" -m POST \
    -H 'Content-Type: application/json' -d "$login_body" "$base/auth/login" >"$out_dir/mixed_login.json"
  wait "$me_pid"
  rss_mark mixed

  # CheckAccess on its cache-hit path: one user asking about their own project, over gRPC directly (the
  # call the task, notification and audit services make on every request).
  access_args=(--identity-url http://127.0.0.1:50151 --project-url http://127.0.0.1:50152
    --concurrency "$connections" --connections 4 --duration "${duration%s}")
  echo "bench: check_access: access_load ${access_args[*]}" >&2
  echo "access_load ${access_args[*]}" >"$out_dir/check_access.cmd"
  "$bin/examples/access_load" "${access_args[@]}" >"$out_dir/check_access.json"
  rss_mark check_access
fi

if [[ $scenario == all || $scenario == hostile ]]; then
  # Hostile bodies: what refusing one costs, in CPU time of every process on its path (read from
  # /proc before and after), not in latency. The body is a task with 150,000 two-letter labels (750 KB,
  # under the 1 MiB body limit) for a project its sender is no member of: the gateway authenticates the
  # caller (cached), reads the body, stops parsing at the 21st label and answers 422 without calling the
  # task service.
  hostile_requests="${BENCH_HOSTILE_REQUESTS:-2000}"
  body="$out_dir/hostile_body.json"
  python3 -c '
import json, string, sys
pairs = [a + b for a in string.ascii_lowercase for b in string.ascii_lowercase]
body = {"project_id": "00000000-0000-7000-8000-000000000000", "title": "Hostile",
        "labels": [pairs[i % len(pairs)] for i in range(150_000)]}
json.dump(body, sys.stdout, separators=(",", ":"))' >"$body"
  body_bytes=$(stat -c %s "$body")
  cpu_ms() { awk -v tck="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000 / tck }' "/proc/$1/stat"; }
  declare -A cpu_before
  for name in gateway task project identity; do
    pid_var="${name}_pid"
    cpu_before[$name]=$(cpu_ms "${!pid_var}")
  done
  echo "bench: hostile: $hostile_requests POSTs of a task with 150,000 labels ($body_bytes bytes)" >&2
  echo "oha -n $hostile_requests -c 4 -m POST -H 'Authorization: Bearer <token>' -H 'Content-Type: application/json' -D hostile_body.json $base/tasks  (a task with 150,000 labels, $body_bytes bytes)" \
    >"$out_dir/hostile.cmd"
  oha --no-tui -w --output-format json -n "$hostile_requests" -c 4 -m POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -D "$body" "$base/tasks" >"$out_dir/hostile_oha.json"
  {
    printf '{"requests": %s, "body_bytes": %s, "cpu_ms": {' "$hostile_requests" "$body_bytes"
    sep=''
    for name in gateway task project identity; do
      pid_var="${name}_pid"
      printf '%s"%s": %s' "$sep" "$name" $(($(cpu_ms "${!pid_var}") - ${cpu_before[$name]}))
      sep=', '
    done
    printf '}, "oha": '
    cat "$out_dir/hostile_oha.json"
    printf '}\n'
  } >"$out_dir/hostile.json"
  rss_mark hostile
fi

if [[ $scenario == all || $scenario == tasks ]]; then
  # The task routes through the gateway. A fresh token: the full run has lasted minutes by now, and an
  # access token lives 15. The examples read it from the environment, off their command lines.
  token=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' -d "$login_body" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  export ORDO_BENCH_TOKEN="$token"
  json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  new_project() {
    curl -fsS -X POST "$base/projects" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d "{\"name\":\"$1\",\"key\":\"$2\"}" | json_field '["id"]'
  }
  # Three projects: the listed one holds exactly the seeded tasks; creates go to a second one (so the
  # list keeps its size), moves shuffle the small board of a third.
  listed=$(new_project 'Bench listed' BLIST)
  created=$(new_project 'Bench created' BNEW)
  board=$(new_project 'Bench board' BBOARD)
  redact="s/$listed/<listed project>/g; s/$created/<second project>/g; s/$board/<board project>/g"

  tasks="${BENCH_TASKS:-10000}"
  board_tasks="${BENCH_BOARD_TASKS:-200}"
  echo "{\"connections\": $connections, \"duration\": \"$duration\", \"tasks\": $tasks, \"board_tasks\": $board_tasks}" \
    >"$out_dir/tasks_run.json"
  seed_args=(--task-url http://127.0.0.1:50153 --project-id "$listed" --tasks "$tasks" --concurrency 32 --connections 4)
  echo "bench: task_seed: task_seed ${seed_args[*]}" >&2
  echo "ORDO_BENCH_TOKEN=<token> task_seed ${seed_args[*]}" | sed -E "$redact" >"$out_dir/task_seed.cmd"
  "$bin/examples/task_seed" "${seed_args[@]}" >"$out_dir/task_seed.json"
  rss_mark task_seed

  task_id=$(curl -fsS -H "Authorization: Bearer $token" "$base/tasks?project_id=$listed&limit=1" \
    | json_field '["items"][0]["id"]')
  redact="$redact; s/$task_id/<task id>/g"
  oha --no-tui -z 3s -c "$connections" -H "Authorization: Bearer $token" "$base/tasks/$task_id" >/dev/null

  create_body="{\"project_id\":\"$created\",\"title\":\"Bench task\",\"priority\":\"medium\",\"labels\":[\"bench\"],\"due_at\":\"2027-01-15T17:00:00Z\"}"
  run task_create -z "$duration" -c "$connections" -m POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "$create_body" "$base/tasks"
  run task_get -z "$duration" -c "$connections" -H "Authorization: Bearer $token" "$base/tasks/$task_id"
  run task_list -z "$duration" -c "$connections" -H "Authorization: Bearer $token" \
    "$base/tasks?project_id=$listed&status=todo,in_progress&sort=-priority&limit=50"

  move_args=(--base-url "$base" --project-id "$board" --tasks "$board_tasks" --concurrency "$connections"
    --duration "${duration%s}")
  echo "bench: task_move: move_load ${move_args[*]}" >&2
  echo "ORDO_BENCH_TOKEN=<token> move_load ${move_args[*]}" | sed -E "$redact" >"$out_dir/task_move.cmd"
  cpu_start=$(cpu_now)
  db_start=$(db_now)
  "$bin/examples/move_load" "${move_args[@]}" >"$out_dir/task_move.json"
  cpu_mark task_move "$cpu_start" "$db_start"
  rss_mark task_move

  # The same list with the page cache off: every request is the miss path, one indexed query over the
  # project. The task service is restarted without the cache for it, then with it again.
  restart_task() {
    kill -TERM "$task_pid"
    wait "$task_pid" 2>/dev/null || true
    start_task "$@"
    wait_ready http://127.0.0.1:19103/readyz
  }
  restart_task ORDO_LIST_CACHE_TTL_SECS=0
  list_url="$base/tasks?project_id=$listed&status=todo,in_progress&sort=-priority&limit=50"
  oha --no-tui -z 3s -c "$connections" -H "Authorization: Bearer $token" "$list_url" >/dev/null
  run task_list_uncached -z "$duration" -c "$connections" -H "Authorization: Bearer $token" "$list_url"
  # Search of the listed project, also without the page cache: a word every seeded title holds
  # ("work"), ranked by relevance (the default), and one that one title in 500 holds ("quasar").
  run task_search_common -z "$duration" -c "$connections" -H "Authorization: Bearer $token" \
    "$base/tasks?project_id=$listed&q=work&limit=50"
  run task_search_rare -z "$duration" -c "$connections" -H "Authorization: Bearer $token" \
    "$base/tasks?project_id=$listed&q=quasar&limit=50"
  # The flow report of the listed project (the default: twelve weeks by week) at 16 connections,
  # without the page cache: every request reads every task and its status history and counts.
  run task_flow_report_uncached -z "$duration" -c 16 -H "Authorization: Bearer $token" \
    "$base/projects/$listed/reports/flow"
  restart_task
  # The same report with the page cache (from a cold start: the first requests compute it), as JSON
  # and as its SVG chart.
  run task_flow_report -z "$duration" -c 16 -H "Authorization: Bearer $token" \
    "$base/projects/$listed/reports/flow"
  run task_flow_chart -z "$duration" -c 16 -H "Authorization: Bearer $token" -H 'Accept: image/svg+xml' \
    "$base/projects/$listed/reports/flow"

  # Background jobs: the listed project exported as CSV and as JSON, each timed from the request to
  # the job's end with the task service's RSS sampled every 20 ms; then the CSV file imported into a
  # fourth project.
  for format in csv json; do
    export_args=(export --base-url "$base" --project-id "$listed" --format "$format" --pid "$task_pid")
    echo "bench: task_export_$format: bench_export.py ${export_args[*]}" >&2
    echo "ORDO_BENCH_TOKEN=<token> bench_export.py ${export_args[*]}" | sed -E "$redact; s/--pid [0-9]+/--pid <task>/" \
      >"$out_dir/task_export_$format.cmd"
    python3 deploy/scripts/bench_export.py "${export_args[@]}" --save "$out_dir/export.$format" \
      >"$out_dir/task_export_$format.json"
  done
  rss_mark task_export
  imported=$(new_project 'Bench imported' BIMP)
  import_args=(import --base-url "$base" --project-id "$imported" --file "$out_dir/export.csv" --pid "$task_pid")
  echo "bench: task_import: bench_export.py ${import_args[*]}" >&2
  echo "ORDO_BENCH_TOKEN=<token> bench_export.py ${import_args[*]}" \
    | sed -E "$redact; s/$imported/<fourth project>/g; s/--pid [0-9]+/--pid <task>/; s#$out_dir/##" \
    >"$out_dir/task_import.cmd"
  python3 deploy/scripts/bench_export.py "${import_args[@]}" >"$out_dir/task_import.json"
  rss_mark task_import
fi

if [[ $scenario == all || $scenario == notifications ]]; then
  wait_ready http://127.0.0.1:19104/readyz
  token=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' -d "$login_body" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
  # user <name>: registers <name>@bench.example (if new) and prints "<id> <access token>".
  user() {
    curl -fsS -o /dev/null -X POST "$base/auth/register" -H 'Content-Type: application/json' \
      -d "{\"email\":\"$1@bench.example\",\"password\":\"$password\",\"display_name\":\"$1\"}" || true
    local access
    access=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' \
      -d "{\"email\":\"$1@bench.example\",\"password\":\"$password\"}" | json_field '["access_token"]')
    echo "$(curl -fsS -H "Authorization: Bearer $access" "$base/users/me" | json_field '["id"]') $access"
  }
  read -r reader_id reader_token < <(user reader)
  read -r watcher_id watcher_token < <(user watcher)
  read -r _ idle_token < <(user idle)
  redact="s/$reader_id/<reader>/g; s/$watcher_id/<watcher>/g"
  # The reader's thousands of assignments would be as many mails: off by email, as a heavy user would.
  curl -fsS -o /dev/null -X PUT "$base/notifications/preferences" -H "Authorization: Bearer $reader_token" \
    -H 'Content-Type: application/json' -d '{"email":{"task.assigned":false}}'

  # Consumer throughput: events straight to the exchange, all for the reader.
  notification_args=(--database-url "mysql://root@127.0.0.1:3306/$notification_schema"
    --exchange "$ORDO_EVENTS_EXCHANGE" --events "${BENCH_NOTIFICATIONS:-10000}" --recipient "$reader_id")
  echo "bench: notifications_consume: notification_load ${notification_args[*]}" >&2
  echo "notification_load ${notification_args[*]}" | sed -E "$redact" >"$out_dir/notifications_consume.cmd"
  "$bin/examples/notification_load" "${notification_args[@]}" >"$out_dir/notifications_consume.json"
  rss_mark notifications_consume

  # The reader's list: the first page of their notifications, with the counts.
  oha --no-tui -z 3s -c "$connections" -H "Authorization: Bearer $reader_token" "$base/notifications" >/dev/null
  run notifications_list -z "$duration" -c "$connections" -H "Authorization: Bearer $reader_token" "$base/notifications"
  # The same list at a steady rate, below saturation: its latency is what a user waits at that load,
  # where the saturated run's latency is mostly the queue of 64 connections on two shared cores.
  # Open loop, corrected for coordinated omission (a late request is timed from when it was due).
  run notifications_list_rate -z "$duration" -c "$connections" -q "${BENCH_LIST_RATE:-1000}" --latency-correction \
    -H "Authorization: Bearer $reader_token" "$base/notifications"

  # The live stream: the bench user creates tasks for the watcher in a project they share, while the
  # idle user holds the other streams. Both processes' memory is read by the load generator.
  project=$(curl -fsS -X POST "$base/projects" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Bench notified","key":"BNOTE"}' | json_field '["id"]')
  curl -fsS -o /dev/null -X POST "$base/projects/$project/members" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' -d "{\"user_id\":\"$watcher_id\",\"role\":\"member\"}"
  redact="$redact; s/$project/<project>/g"
  sse_args=(--base-url "$base" --project-id "$project" --watcher-id "$watcher_id"
    --idle-streams "${BENCH_SSE_STREAMS:-10000}" --rate "${BENCH_EVENT_RATE:-200}" --duration "${duration%s}"
    --pid "gateway=$gateway_pid" --pid "notification=$notification_pid")
  echo "bench: notifications_stream: sse_load ${sse_args[*]}" >&2
  echo "ORDO_BENCH_TOKEN=<token> ORDO_BENCH_WATCHER_TOKEN=<token> ORDO_BENCH_IDLE_TOKEN=<token> sse_load ${sse_args[*]}" \
    | sed -E "$redact; s/=[0-9]+/=<pid>/g" >"$out_dir/notifications_stream.cmd"
  ORDO_BENCH_TOKEN="$token" ORDO_BENCH_WATCHER_TOKEN="$watcher_token" ORDO_BENCH_IDLE_TOKEN="$idle_token" \
    "$bin/examples/sse_load" "${sse_args[@]}" >"$out_dir/notifications_stream.json"
  rss_mark notifications_stream
fi

if [[ $scenario == all || $scenario == webhooks ]]; then
  # A project's webhook to a receiver on loopback (the load generator's own): throughput of events
  # published straight to the exchange, then commit-to-delivery latency of task creates through the API.
  wait_ready http://127.0.0.1:19104/readyz
  token=$(curl -fsS -X POST "$base/auth/login" -H 'Content-Type: application/json' -d "$login_body" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  hooked=$(curl -fsS -X POST "$base/projects" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"Bench hooked","key":"BHOOK"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  webhook_args=(--base-url "$base" --project-id "$hooked" --exchange "$ORDO_EVENTS_EXCHANGE"
    --events "${BENCH_WEBHOOK_EVENTS:-5000}" --rate "${BENCH_WEBHOOK_RATE:-200}" --duration "${duration%s}")
  echo "bench: webhooks: webhook_load ${webhook_args[*]}" >&2
  echo "ORDO_BENCH_TOKEN=<token> webhook_load ${webhook_args[*]}" | sed -E "s/$hooked/<project>/g" >"$out_dir/webhooks.cmd"
  ORDO_BENCH_TOKEN="$token" "$bin/examples/webhook_load" "${webhook_args[@]}" >"$out_dir/webhooks.json"
  rss_mark webhooks
fi

if [[ $scenario == all || $scenario == audit ]]; then
  # The audit log: publish events as fast as the broker confirms them while audit appends them to its
  # hash chain, then time `verify` over the whole chain.
  audit_args=(--database-url "mysql://root@127.0.0.1:3306/$audit_schema" --exchange "$ORDO_EVENTS_EXCHANGE"
    --events "${BENCH_AUDIT_EVENTS:-20000}")
  echo "bench: audit: audit_load ${audit_args[*]}" >&2
  echo "audit_load ${audit_args[*]}  (ordo-audit --consumers $audit_consumers --append-batch $audit_batch)" \
    >"$out_dir/audit.cmd"
  echo "{\"consumers\": $audit_consumers, \"append_batch\": $audit_batch}" >"$out_dir/audit_service.json"
  "$bin/examples/audit_load" "${audit_args[@]}" >"$out_dir/audit.json"
  rss_mark audit
fi

if [[ $scenario == all ]]; then
  python3 deploy/scripts/bench_report.py "$out_dir" "$connections" "$duration" "$login_rate" >BENCHMARKS.md
  echo "bench: wrote BENCHMARKS.md" >&2
  cat BENCHMARKS.md
else
  python3 deploy/scripts/bench_report.py --only "$scenario" "$out_dir" BENCHMARKS.md >"$out_dir/BENCHMARKS.md.new"
  mv "$out_dir/BENCHMARKS.md.new" BENCHMARKS.md
  echo "bench: replaced the $scenario section of BENCHMARKS.md" >&2
  if [[ $scenario == audit ]]; then
    cat "$out_dir/audit.json"
  elif [[ $scenario == hostile ]]; then
    sed -n '/^## Hostile/,/^## Audit/p' BENCHMARKS.md
  elif [[ $scenario == notifications ]]; then
    sed -n '/^## Notifications/,/^## Webhooks/p' BENCHMARKS.md
  elif [[ $scenario == webhooks ]]; then
    sed -n '/^## Webhooks/,/^## Audit/p' BENCHMARKS.md
  else
    sed -n '/^## Tasks/,/^## Audit/p' BENCHMARKS.md
  fi
fi
