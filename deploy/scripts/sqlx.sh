#!/usr/bin/env bash
# Compile-time checked SQL. Every static statement goes through sqlx's query macros, which describe
# it against a live schema when one is configured and otherwise read the offline data committed in
# .sqlx/ (so an ordinary build, CI's included, needs no database).
#
# This script makes the live side: for each crate with a sqlx.toml it (re)creates the schema
# `ordo_sqlx_<crate>` on the local MariaDB, applies the events library's migrations and the crate's
# own (as the service's `migrate` does), and exports the variable that crate's sqlx.toml names. Then:
#
#   deploy/scripts/sqlx.sh prepare   rewrite .sqlx/ from the schemas (after changing a statement)
#   deploy/scripts/sqlx.sh check     fail when .sqlx/ is not what the code and schemas produce (CI)
#   eval "$(deploy/scripts/sqlx.sh env)"
#                                    bring the schemas up to date (not dropped) and set the variables
#                                    in this shell, so `cargo check` describes statements live while
#                                    one writes them
#
# Needs sqlx-cli (`cargo install --locked sqlx-cli --version 0.9.0 --no-default-features
# --features mysql,sqlx-toml`; .ci/run installs that pin). Environment: ORDO_SQLX_SERVER_URL (default
# mysql://root@127.0.0.1:3306). The schemas are the script's own; nothing else uses them.
set -euo pipefail

cd "$(dirname "$0")/../.."

server=${ORDO_SQLX_SERVER_URL:-mysql://root@127.0.0.1:3306}
server=${server%/}

# crate directory, schema suffix, the variable its sqlx.toml names
crates=(
  "libs/events events ORDO_SQLX_EVENTS_URL"
  "services/identity identity ORDO_SQLX_IDENTITY_URL"
  "services/project project ORDO_SQLX_PROJECT_URL"
  "services/task task ORDO_SQLX_TASK_URL"
  "services/audit audit ORDO_SQLX_AUDIT_URL"
  "services/notification notification ORDO_SQLX_NOTIFICATION_URL"
)

log() { printf '[sqlx] %s\n' "$*" >&2; }

# Migrates every schema. `fresh` drops it first, so the description never depends on what a previous
# run or a developer left in it; without it an existing schema is only brought up to date.
prepare_schemas() {
  command -v sqlx >/dev/null || {
    log "sqlx-cli is missing: cargo install --locked sqlx-cli --version 0.9.0 --no-default-features --features mysql,sqlx-toml"
    exit 1
  }
  for entry in "${crates[@]}"; do
    read -r dir name _ <<<"$entry"
    url="$server/ordo_sqlx_$name"
    if [[ ${1:-} == fresh ]]; then
      sqlx database drop -y -D "$url" >/dev/null
    fi
    sqlx database create -D "$url"
    # One schema holds both sets (as the service's `migrate` applies them), so each run ignores the
    # versions the other set applied.
    sqlx migrate run -D "$url" --source libs/events/migrations --ignore-missing >/dev/null
    if [[ $dir != libs/events ]]; then
      sqlx migrate run -D "$url" --source "$dir/migrations" --ignore-missing >/dev/null
    fi
    log "$dir: schema ordo_sqlx_$name migrated"
  done
}

print_env() {
  for entry in "${crates[@]}"; do
    read -r _ name var <<<"$entry"
    printf 'export %s=%q\n' "$var" "$server/ordo_sqlx_$name"
  done
}

case ${1:-} in
  prepare | check)
    prepare_schemas fresh
    eval "$(print_env)"
    # sqlx-cli wants one URL of its own (it checks the server answers); each crate's macros still
    # read the variable its sqlx.toml names.
    check=()
    [[ $1 == check ]] && check=(--check)
    cargo sqlx prepare --workspace "${check[@]}" -D "$server/ordo_sqlx_events" -- --all-targets
    ;;
  env)
    prepare_schemas
    print_env
    ;;
  *)
    echo "usage: $0 prepare|check|env" >&2
    exit 2
    ;;
esac
