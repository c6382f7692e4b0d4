# Ordo's developer commands. `just` alone lists them.
#
# Everything here runs on a plain developer machine with MariaDB, Redis and RabbitMQ on localhost
# (`just services` starts them, and on Debian or Ubuntu installs any that is missing). Nothing here
# needs Docker; compose.yaml is the alternative for a machine that has it.

set shell := ["bash", "-euo", "pipefail", "-c"]

# The project venv's bin/ first on PATH: where the system python3 refuses pip (Debian's and Ubuntu's
# own, PEP 668) or there is none, moto and the Python test tools go into the venv
# ${XDG_CACHE_HOME:-~/.cache}/ordo/venv (deploy/scripts/setup-lib.sh), and then `python3`,
# `cfn-lint` and the Schemathesis test's `python3` are its. Elsewhere (a pyenv Python whose pip
# installs) that directory does not exist and nothing changes.
export PATH := `echo "${XDG_CACHE_HOME:-$HOME/.cache}/ordo/venv/bin:$PATH"`

# Local addresses used by `just dev`. Override per run: `just gateway_http_port=8081 dev`.
# Convention: a service's gRPC port is 5005N and its ops port (healthz/readyz/metrics) 910N.
host := "127.0.0.1"
identity_grpc_port := "50051"
identity_ops_port := "9101"
project_grpc_port := "50052"
project_ops_port := "9102"
task_grpc_port := "50053"
task_ops_port := "9103"
notification_grpc_port := "50054"
notification_ops_port := "9104"
audit_grpc_port := "50055"
audit_ops_port := "9105"
gateway_http_port := "8080"

# Services that own a MySQL schema, so their binary `ordo-<name>` has a `migrate` subcommand.
# The gateway owns no schema and is not listed.
migrating_services := "identity project task notification audit"

# List the recipes.
default:
    @just --list --unsorted

# Run identity, project, task, notification, audit and the gateway in the foreground with pretty, name-prefixed logs; Ctrl-C stops all.
dev: services build migrate
    IDENTITY_GRPC_ADDR={{ host }}:{{ identity_grpc_port }} \
    IDENTITY_OPS_ADDR={{ host }}:{{ identity_ops_port }} \
    PROJECT_GRPC_ADDR={{ host }}:{{ project_grpc_port }} \
    PROJECT_OPS_ADDR={{ host }}:{{ project_ops_port }} \
    TASK_GRPC_ADDR={{ host }}:{{ task_grpc_port }} \
    TASK_OPS_ADDR={{ host }}:{{ task_ops_port }} \
    NOTIFICATION_GRPC_ADDR={{ host }}:{{ notification_grpc_port }} \
    NOTIFICATION_OPS_ADDR={{ host }}:{{ notification_ops_port }} \
    AUDIT_GRPC_ADDR={{ host }}:{{ audit_grpc_port }} \
    AUDIT_OPS_ADDR={{ host }}:{{ audit_ops_port }} \
    GATEWAY_HTTP_ADDR={{ host }}:{{ gateway_http_port }} \
    ORDO_GRPC_REFLECTION=true \
    bash deploy/scripts/dev.sh

# Build every binary once (debug).
build:
    cargo build --bins

# Run each service's `migrate` subcommand (creates its schema if missing, applies migrations, exits).
migrate:
    for svc in {{ migrating_services }}; do \
        echo "migrate: ordo-$svc"; \
        ORDO_LOG_FORMAT="${ORDO_LOG_FORMAT:-pretty}" cargo run --quiet --bin "ordo-$svc" -- migrate; \
    done

# Doc tests run before nextest: nextest does not run doc tests, and CI reads the last runner's
# summary, so nextest's must come last.

# Lint, then every test (needs MariaDB, Redis, RabbitMQ and S3 on localhost; starts any that are down). The CI test command.
test: services tools lint
    cargo test --doc --workspace
    cargo nextest run --workspace --no-fail-fast

# Schemathesis, the API fuzzer gateway/tests/api/schemathesis.rs runs. Pinned: keep it equal to
# that test's VERSION.
schemathesis_version := "4.32.5"

# Install the test tools that do not come with cargo (Schemathesis from PyPI), only when missing:
# with the system python3's pip where it installs, else into the project venv (made first; on
# Debian or Ubuntu python3 and python3-venv come from apt, asked first in a terminal, automatic when
# CI is set). See deploy/scripts/pip-install.sh.
tools:
    #!/usr/bin/env bash
    set -euo pipefail
    # Asked through python3 (not `st` on PATH) so a pyenv or --user install not yet on PATH counts;
    # the venv's python3 where there is one (PATH above).
    found=$(python3 -c "import importlib.metadata as m; print(m.version('schemathesis'))" 2>/dev/null || true)
    if [[ $found == "{{ schemathesis_version }}" ]]; then
      echo "schemathesis: $found"
    else
      echo "schemathesis: ${found:-missing}; installing {{ schemathesis_version }} with pip"
      bash deploy/scripts/pip-install.sh "schemathesis=={{ schemathesis_version }}"
    fi

# The scripts' own tests, the formatting check and clippy with warnings as errors.
lint: check-scripts
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Rewrite the offline data of the compile-time checked SQL (.sqlx/) after changing a statement or a
# migration; commit it with the change. Needs sqlx-cli (see deploy/scripts/sqlx.sh).
sqlx-prepare: services
    bash deploy/scripts/sqlx.sh prepare

# Fail when .sqlx/ is stale (what .ci/run runs).
sqlx-check: services
    bash deploy/scripts/sqlx.sh check

# Format the whole workspace.
fmt:
    cargo fmt --all

# Regenerate the protobuf/gRPC code (libs/proto's build.rs runs protox; no protoc needed).
proto:
    cargo build -p ordo-proto

# Load benchmarks (release build); `just bench audit`, `just bench tasks` or `just bench hostile` runs only that scenario; see deploy/scripts/bench.sh.
[positional-arguments]
bench *args:
    bash deploy/scripts/bench.sh "$@"

# The release binaries `just chaos` and `just soak` run, and their driver.
release_bins := "--bin ordo-identity --bin ordo-project --bin ordo-task --bin ordo-audit --bin ordo-notification --bin ordo-gateway --bin ordo-chaos"

# Faults under load against the release binaries, one at a time: SIGKILL and SIGTERM of every service and the gateway, a RabbitMQ and a MariaDB restart, Redis away 30 s; prints the table of RELIABILITY.md. Really stops this machine's backends (and always starts them again). `just chaos --only kill-task,restart-mariadb` runs only those.
[positional-arguments]
chaos *args: services
    cargo build --release {{ release_bins }}
    target/release/ordo-chaos chaos "$@"

# The mixed load at 70 % of the capacity it measures first, for 30 minutes (`just soak --minutes 10`: the short form), with memory, sockets, errors, p99 per operation, CPU per process and MariaDB's buffer pool every minute.
[positional-arguments]
soak *args: services
    cargo build --release {{ release_bins }}
    target/release/ordo-chaos soak --workers 32 "$@"

# services: Debian packages, and moto from PyPI for S3 and SES. On Debian or Ubuntu a missing MariaDB,
# Redis or RabbitMQ is installed first with apt-get (asked in a terminal; automatic when CI is set);
# elsewhere it says what to install. moto goes into the system python3 where its pip installs, else
# into the project venv (with python3 and python3-venv from apt under the same rules where missing).
# When all answer this only pings them (under a second).
# `bash deploy/scripts/local-services.sh --plan` prints what it would do and changes nothing.

# Start local MariaDB, Redis, RabbitMQ and the S3 and SES stand-ins (or the ones named) if they are down, installing any of the first three that is missing (Debian/Ubuntu).
[positional-arguments]
services *names:
    bash deploy/scripts/local-services.sh "$@"

# Test what `just services` and the Python tools' installer decide on each kind of machine (through their --plan mode, on fake machines; installs and starts nothing).
check-scripts:
    bash deploy/scripts/test-local-services.sh

# check-deploy needs check-jsonschema, botocore and cfn-lint from PyPI (.ci/run installs them with
# deploy/scripts/pip-install.sh, cfn-lint pinned; into the project venv where pip is refused, whose
# bin/ the PATH above puts first). All carry their schemas, so it works offline: the Compose
# specification, the ECS/autoscaling API shapes, and the CloudFormation resource schemas. promtool (pinned, from Debian's prometheus
# package) is fetched into ~/.cache/ordo on first use by deploy/scripts/promtool.sh.

# Validate compose.yaml against the Compose spec, deploy/ecs/ against the AWS API shapes, lint deploy/cloudformation/, check and unit-test the Prometheus config and alert rules, and check the Grafana dashboards and the runbook links.
check-deploy:
    python3 -m check_jsonschema --builtin-schema vendor.compose-spec compose.yaml
    python3 deploy/scripts/check-ecs.py deploy/ecs
    cfn-lint deploy/cloudformation/*.yaml
    bash deploy/scripts/promtool.sh check config deploy/prometheus/prometheus.yml
    bash deploy/scripts/promtool.sh check rules deploy/prometheus/rules/*.yml
    bash deploy/scripts/promtool.sh test rules deploy/prometheus/tests/*.yml
    python3 deploy/scripts/check-observability.py
