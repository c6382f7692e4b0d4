#!/usr/bin/env bash
# Tests local-services.sh's decisions: for each interesting state of a machine (distribution, which
# servers are installed, which answer, root or sudo, terminal, CI, and which Python: none, one whose
# pip refuses to install (PEP 668) with or without its venv module, one whose pip installs, the
# project venv) it runs `local-services.sh --plan` against fake observations and compares the printed
# plan (what it would install, start and run, and its exit status) with the expected one; and the
# same for pip-install.sh, which `just tools` and .ci/run install the Python test tools with.
#
# Changes nothing and needs neither root nor the network: --plan only prints, the ORDO_SERVICES_FAKE_*
# variables stand in for the machine (see local-services.sh's header), and the fake binaries it is
# shown record any attempt to run them, which fails the test. Well under a second.
#
#   deploy/scripts/test-local-services.sh      (run by `just check-scripts`, part of `just lint`)
set -euo pipefail

scripts=$(cd "$(dirname "$0")" && pwd)
script=$scripts/local-services.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# bins NAME...: a directory holding a fake executable for each NAME; prints its path. Running one
# records it in $tmp/executed.
bins() {
  local dir b
  dir=$tmp/bin-$(IFS=-; echo "${*:-none}")
  mkdir -p "$dir"
  for b in "$@"; do
    # shellcheck disable=SC2016  # $0 and $* are the fake's own, expanded when it runs.
    printf '#!/bin/sh\necho "ran $0 $*" >>"%s/executed"\nexit 99\n' "$tmp" >"$dir/$b"
    chmod +x "$dir/$b"
  done
  echo "$dir"
}

# os NAME LINE...: an os-release file; prints its path.
os() {
  local file=$tmp/os-release-$1
  shift
  printf '%s\n' "$@" >"$file"
  echo "$file"
}

debian=$(os debian 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' ID=debian VERSION_ID=\"12\")
ubuntu=$(os ubuntu 'NAME="Ubuntu"' ID=ubuntu ID_LIKE=debian VERSION_ID=\"24.04\")
elementary=$(os elementary 'NAME="elementary OS"' ID=elementary ID_LIKE=ubuntu)
quoted=$(os quoted 'ID="debian"')
fedora=$(os fedora 'NAME="Fedora Linux"' ID=fedora VERSION_ID=40)

everything=$(bins mariadbd redis-server rabbitmq-server python3 apt-get sudo)
apt_only=$(bins apt-get)
apt_sudo=$(bins apt-get sudo)
apt_python=$(bins python3 apt-get)
nothing=$(bins)

passed=0 failed=0

# plan NAME EXPECTED_EXIT [VAR=VALUE...] [-- ARG...] <<<EXPECTED_STDOUT
# Runs the plan of $script (local-services.sh, whose ARGs are services; later pip-install.sh) on a
# default state (Debian, root, no terminal, no CI, every server installed, none answering, a python3
# whose pip installs and has moto, no project venv, the cache in /cache) changed by the VAR=VALUEs,
# and compares its stdout and exit status. $stderr keeps what it logged, for expect_log.
plan() {
  local name=$1 want_rc=$2 want out rc
  shift 2
  local vars=()
  while (($#)) && [[ $1 != -- ]]; do
    vars+=("$1")
    shift
  done
  (($#)) && shift
  want=$(cat)
  out=$(env -u CI -u ORDO_SERVICES_ASSUME_YES \
    ORDO_SERVICES_OS_RELEASE="$debian" ORDO_SERVICES_FAKE_PATH="$everything" \
    ORDO_SERVICES_FAKE_UP="" ORDO_SERVICES_FAKE_UID=0 ORDO_SERVICES_FAKE_TTY=0 \
    ORDO_SERVICES_FAKE_PYTHON="pip moto" XDG_CACHE_HOME=/cache \
    ${vars[@]+"${vars[@]}"} bash "$script" --plan "$@" 2>"$tmp/stderr" </dev/null) && rc=0 || rc=$?
  stderr=$(<"$tmp/stderr")
  current=$name
  if [[ $out == "$want" && $rc == "$want_rc" ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s\n  exit: %s (expected %s)\n  --- expected\n%s\n  --- got\n%s\n  --- stderr\n%s\n' \
      "$name" "$rc" "$want_rc" "$want" "$out" "$stderr"
  fi
}

# expect_log TEXT: the last plan's log (stderr) contains TEXT.
expect_log() {
  if [[ $stderr == *"$1"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s: log lacks %q\n  --- stderr\n%s\n' "$current" "$1" "$stderr"
  fi
}

# expect_one_line: the last plan logged exactly one line.
expect_one_line() {
  if [[ -n $stderr && $stderr != *$'\n'* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf 'FAIL: %s: not one line\n  --- stderr\n%s\n' "$current" "$stderr"
  fi
}

alter="ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
install_all="apt-get install -y -qq --no-install-recommends mariadb-server redis-server rabbitmq-server"
venv=/cache/ordo/venv
moto="moto[server]==5.2.5"
pip_system="python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore"
pip_venv="$venv/bin/python3 -m pip install --quiet --disable-pip-version-check"

# --- Nothing to do --------------------------------------------------------------------------------
plan "everything answers: nothing installed or started" 0 ORDO_SERVICES_FAKE_UP="mariadb redis rabbitmq s3 ses" <<EOF
mariadb: up
redis: up
rabbitmq: up
s3: up
ses: up
install: none
exit: 0
EOF

plan "answering but not installed here (a server elsewhere, or in Docker): left alone" 0 \
  ORDO_SERVICES_FAKE_UP="mariadb redis rabbitmq" ORDO_SERVICES_FAKE_PATH="$apt_only" -- mariadb redis rabbitmq <<EOF
mariadb: up
redis: up
rabbitmq: up
install: none
exit: 0
EOF

# --- Installed but down: started, nothing installed --------------------------------------------
plan "installed but down (after a reboot): only started, no apt-get, users untouched" 0 CI=true <<EOF
mariadb: down: start
redis: down: start
rabbitmq: down: start
s3: down: start
ses: down: start
python: python3 (its pip installs): moto 5.2.5 installed
install: none
start: mariadb
start: redis
start: rabbitmq
start: s3
start: ses
exit: 0
EOF

plan "MySQL's mysqld counts as installed: never replaced by mariadb-server" 0 \
  CI=true ORDO_SERVICES_FAKE_PATH="$(bins mysqld apt-get)" -- mariadb <<EOF
mariadb: down: start
install: none
start: mariadb
exit: 0
EOF

# --- A fresh Debian or Ubuntu machine ------------------------------------------------------------
plan "fresh Debian under CI: the three servers and Python in one apt-get, moto into a new venv, all started, MariaDB's root opened to TCP" 0 \
  CI=true ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" <<EOF
mariadb: down, not installed: install mariadb-server, start
redis: down, not installed: install redis-server, start
rabbitmq: down, not installed: install rabbitmq-server, start
s3: down: start
ses: down: start
python: $venv/bin/python3 (new venv: no python3): install $moto
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive $install_all python3 python3-venv
start: mariadb
start: redis
start: rabbitmq
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: s3
start: ses
run: mariadb --protocol=socket --user=root --execute=$alter
exit: 0
EOF
expect_log "not installed: mariadb redis rabbitmq python3; installing mariadb-server redis-server rabbitmq-server python3 python3-venv from debian's packages with apt-get"

plan "only Redis missing: installs redis-server alone; an existing MariaDB's users untouched" 0 \
  CI=true ORDO_SERVICES_FAKE_UP="mariadb s3 ses" ORDO_SERVICES_FAKE_PATH="$(bins mariadbd rabbitmq-server apt-get)" <<EOF
mariadb: up
redis: down, not installed: install redis-server, start
rabbitmq: down: start
s3: up
ses: up
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
start: rabbitmq
exit: 0
EOF

plan "a missing server that answers anyway is not installed; one named service only" 0 \
  CI=true ORDO_SERVICES_FAKE_UP="rabbitmq" ORDO_SERVICES_FAKE_PATH="$apt_only" -- rabbitmq <<EOF
rabbitmq: up
install: none
exit: 0
EOF

plan "ORDO_SERVICES_ASSUME_YES=1 without a terminal: installs without asking" 0 \
  ORDO_SERVICES_ASSUME_YES=1 ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
exit: 0
EOF

plan "from a terminal, not CI: asks first" 0 \
  ORDO_SERVICES_FAKE_TTY=1 ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: ask
ask: install redis-server with apt-get? [y/N] (no: exit 1)
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
exit: 0
EOF

plan "CI=false counts as not CI: asks in a terminal" 0 \
  CI=false ORDO_SERVICES_FAKE_TTY=1 ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: ask
ask: install redis-server with apt-get? [y/N] (no: exit 1)
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
exit: 0
EOF

plan "no terminal and not CI: installs and starts nothing, says how in one line" 1 \
  ORDO_SERVICES_FAKE_PATH="$(bins redis-server python3 apt-get)" <<EOF
mariadb: down, not installed: install mariadb-server, start
redis: down: start
rabbitmq: down, not installed: install rabbitmq-server, start
s3: down: start
ses: down: start
python: python3 (its pip installs): moto 5.2.5 installed
install: refuse
exit: 1
EOF
expect_log "not installed: mariadb rabbitmq; not installing without a terminal to ask"
expect_log "ORDO_SERVICES_ASSUME_YES=1"
expect_log "\`apt-get install mariadb-server rabbitmq-server\` yourself"
expect_one_line

plan "Ubuntu, not root, with sudo: apt-get and the root change through sudo" 0 \
  CI=true ORDO_SERVICES_OS_RELEASE="$ubuntu" ORDO_SERVICES_FAKE_UID=1000 ORDO_SERVICES_FAKE_PATH="$apt_sudo" \
  -- mariadb redis rabbitmq <<EOF
mariadb: down, not installed: install mariadb-server, start
redis: down, not installed: install redis-server, start
rabbitmq: down, not installed: install rabbitmq-server, start
install: auto (sudo)
run: sudo apt-get update -qq
run: sudo env DEBIAN_FRONTEND=noninteractive $install_all
start: mariadb
start: redis
start: rabbitmq
run: sudo mariadb --protocol=socket --user=root --execute=$alter
exit: 0
EOF
expect_log "from ubuntu's packages with sudo apt-get"

plan "not root and no sudo: says to install as root" 1 \
  CI=true ORDO_SERVICES_FAKE_UID=1000 ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: unsupported
exit: 1
EOF
expect_log "installing needs root and there is no sudo: as root run \`apt-get install redis-server\`"

plan "an Ubuntu derivative (elementary OS: ID_LIKE=ubuntu) is handled like Ubuntu" 0 \
  CI=true ORDO_SERVICES_OS_RELEASE="$elementary" ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
exit: 0
EOF

plan "a quoted ID (ID=\"debian\") is read" 0 \
  CI=true ORDO_SERVICES_OS_RELEASE="$quoted" ORDO_SERVICES_FAKE_PATH="$apt_only" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
start: redis
exit: 0
EOF

# --- Elsewhere: one line saying what to do, exit 1 ----------------------------------------------
plan "Fedora: installs nothing, one line says what to install or to use docker compose" 1 \
  CI=true ORDO_SERVICES_OS_RELEASE="$fedora" ORDO_SERVICES_FAKE_PATH="$nothing" -- mariadb redis rabbitmq <<EOF
mariadb: down, not installed: install mariadb-server, start
redis: down, not installed: install redis-server, start
rabbitmq: down, not installed: install rabbitmq-server, start
install: unsupported
exit: 1
EOF
expect_log "not installed: mariadb redis rabbitmq; this script installs them only on Debian or Ubuntu (apt-get), not on fedora"
expect_log "\`docker compose up --build\` instead of \`just dev\`"
expect_one_line

plan "no os-release (macOS): says to install them (brew) or use docker compose" 1 \
  CI=true ORDO_SERVICES_OS_RELEASE="$tmp/absent" ORDO_SERVICES_FAKE_PATH="$nothing" -- redis <<EOF
redis: down, not installed: install redis-server, start
install: unsupported
exit: 1
EOF
expect_log "brew install mariadb redis rabbitmq"

plan "Debian without apt-get: says what to install" 1 \
  CI=true ORDO_SERVICES_FAKE_PATH="$nothing" -- mariadb <<EOF
mariadb: down, not installed: install mariadb-server, start
install: unsupported
exit: 1
EOF
expect_log "has no apt-get"

plan "elsewhere, installed but down: started as before" 0 \
  ORDO_SERVICES_OS_RELEASE="$fedora" ORDO_SERVICES_FAKE_PATH="$(bins redis-server python3)" -- redis s3 <<EOF
redis: down: start
s3: down: start
python: python3 (its pip installs): moto 5.2.5 installed
install: none
start: redis
start: s3
exit: 0
EOF

plan "an unknown name is refused" 2 -- postgres <<EOF
EOF
expect_log "unknown service 'postgres'"

# --- The moto servers' Python -----------------------------------------------------------------------
plan "S3 and SES up: Python is not looked at" 0 \
  ORDO_SERVICES_FAKE_UP="s3 ses" ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" -- s3 ses <<EOF
s3: up
ses: up
install: none
exit: 0
EOF

plan "pip fine (pyenv's python3): moto pip-installed into it as before, no venv, no apt" 0 \
  ORDO_SERVICES_FAKE_PYTHON="pip" -- s3 ses <<EOF
s3: down: start
ses: down: start
python: python3 (its pip installs): install $moto
install: none
run: $pip_system $moto
start: s3
start: ses
exit: 0
EOF
expect_log "installing moto[server] 5.2.5 with pip into python3"

plan "pip refused (PEP 668) with its venv module (Ubuntu with python3-venv): a venv, no apt" 0 \
  ORDO_SERVICES_FAKE_PATH="$apt_python" ORDO_SERVICES_FAKE_PYTHON="venv" -- s3 ses <<EOF
s3: down: start
ses: down: start
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668)): install $moto
install: none
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: s3
start: ses
exit: 0
EOF
expect_log "python: making the venv $venv"

plan "pip refused, no venv module (Debian's own python3), CI: python3-venv from apt, then the venv" 0 \
  CI=true ORDO_SERVICES_FAKE_PATH="$apt_python" ORDO_SERVICES_FAKE_PYTHON="" -- s3 ses <<EOF
s3: down: start
ses: down: start
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668) and has no venv module): install $moto
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: s3
start: ses
exit: 0
EOF
expect_log "not installed: python3-venv; installing python3-venv from debian's packages with apt-get"

plan "pip refused, no venv module, from a terminal as a user: asks, then sudo apt-get" 0 \
  ORDO_SERVICES_FAKE_TTY=1 ORDO_SERVICES_FAKE_UID=1000 ORDO_SERVICES_FAKE_PATH="$(bins python3 apt-get sudo)" \
  ORDO_SERVICES_FAKE_PYTHON="" -- ses <<EOF
ses: down: start
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668) and has no venv module): install $moto
install: ask (sudo)
ask: install python3-venv with apt-get? [y/N] (no: exit 1)
run: sudo apt-get update -qq
run: sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: ses
exit: 0
EOF

plan "no python3 at all, CI: python3 and python3-venv from apt, then the venv" 0 \
  CI=true ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" -- s3 <<EOF
s3: down: start
python: $venv/bin/python3 (new venv: no python3): install $moto
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: s3
exit: 0
EOF

plan "no python3, no terminal, not CI: installs and starts nothing, says how in one line" 1 \
  ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" -- s3 ses <<EOF
s3: down: start
ses: down: start
python: $venv/bin/python3 (new venv: no python3): install $moto
install: refuse
exit: 1
EOF
expect_log "not installed: python3; not installing without a terminal to ask"
expect_log "\`apt-get install python3 python3-venv\` yourself"
expect_one_line

plan "the project venv exists: used (even beside a python3 whose pip installs)" 0 \
  ORDO_SERVICES_FAKE_PYTHON="pip project-venv moto" -- s3 ses <<EOF
s3: down: start
ses: down: start
python: $venv/bin/python3 (the project venv): moto 5.2.5 installed
install: none
start: s3
start: ses
exit: 0
EOF

plan "the project venv without moto (or with another version): installed into it, not made again" 0 \
  ORDO_SERVICES_FAKE_PATH="$apt_python" ORDO_SERVICES_FAKE_PYTHON="project-venv" -- s3 <<EOF
s3: down: start
python: $venv/bin/python3 (the project venv): install $moto
install: none
run: $pip_venv $moto
start: s3
exit: 0
EOF

plan "no python3 on Fedora: one line says to install Python or use docker compose" 1 \
  CI=true ORDO_SERVICES_OS_RELEASE="$fedora" ORDO_SERVICES_FAKE_PATH="$(bins redis-server)" ORDO_SERVICES_FAKE_PYTHON="" \
  -- redis s3 <<EOF
redis: down: start
s3: down: start
python: $venv/bin/python3 (new venv: no python3): install $moto
install: unsupported
exit: 1
EOF
expect_log "not installed: python3; this script installs them only on Debian or Ubuntu (apt-get), not on fedora: install Python 3 with its venv module yourself and rerun, or run Ordo in Docker"
expect_one_line

plan "pip refused with a venv module elsewhere (macOS's Homebrew python3): a venv, nothing from apt" 0 \
  ORDO_SERVICES_OS_RELEASE="$tmp/absent" ORDO_SERVICES_FAKE_PATH="$(bins python3)" ORDO_SERVICES_FAKE_PYTHON="venv" -- s3 <<EOF
s3: down: start
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668)): install $moto
install: none
run: python3 -m venv --clear $venv
run: $pip_venv $moto
start: s3
exit: 0
EOF

plan "a server and python3-venv missing without a terminal: one line names both" 1 \
  ORDO_SERVICES_FAKE_PATH="$(bins mariadbd rabbitmq-server python3 apt-get)" ORDO_SERVICES_FAKE_PYTHON="" -- redis s3 <<EOF
redis: down, not installed: install redis-server, start
s3: down: start
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668) and has no venv module): install $moto
install: refuse
exit: 1
EOF
expect_log "not installed: redis python3-venv; not installing without a terminal to ask"
expect_log "\`apt-get install redis-server python3-venv\` yourself"
expect_one_line

# --- pip-install.sh (just tools, .ci/run) -------------------------------------------------------------
script=$scripts/pip-install.sh
schemathesis="schemathesis==4.32.5"

plan "pip-install: pip fine: the same pip command as before" 0 -- "$schemathesis" <<EOF
python: python3 (its pip installs)
install: none
run: $pip_system $schemathesis
exit: 0
EOF

plan "pip-install: pip refused, no venv module, CI: python3-venv, the venv, pip in it" 0 \
  CI=true ORDO_SERVICES_FAKE_PATH="$apt_python" ORDO_SERVICES_FAKE_PYTHON="" -- check-jsonschema==0.39.0 "botocore>=1.34" <<EOF
python: $venv/bin/python3 (new venv: python3 refuses pip (externally managed, PEP 668) and has no venv module)
install: auto
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
run: python3 -m venv --clear $venv
run: $pip_venv check-jsonschema==0.39.0 botocore>=1.34
exit: 0
EOF

plan "pip-install: the project venv exists: into it" 0 \
  ORDO_SERVICES_FAKE_PYTHON="pip project-venv" -- "$schemathesis" <<EOF
python: $venv/bin/python3 (the project venv)
install: none
run: $pip_venv $schemathesis
exit: 0
EOF

plan "pip-install: no python3, no terminal, not CI: one line, exit 1" 1 \
  ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" -- "$schemathesis" <<EOF
python: $venv/bin/python3 (new venv: no python3)
install: refuse
exit: 1
EOF
expect_log "not installed: python3; not installing without a terminal to ask: run \`just tools\` in a terminal"
expect_one_line

plan "pip-install: no python3 from a terminal: asks" 0 \
  ORDO_SERVICES_FAKE_TTY=1 ORDO_SERVICES_FAKE_PATH="$apt_only" ORDO_SERVICES_FAKE_PYTHON="" -- cfn-lint==1.58.0 <<EOF
python: $venv/bin/python3 (new venv: no python3)
install: ask
ask: install python3 python3-venv with apt-get? [y/N] (no: exit 1)
run: apt-get update -qq
run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
run: python3 -m venv --clear $venv
run: $pip_venv cfn-lint==1.58.0
exit: 0
EOF

plan "pip-install: no package named: usage" 2 <<EOF
EOF
expect_log "usage:"

# --- Nothing was run -----------------------------------------------------------------------------
current="no fake binary was ever run"
if [[ -e $tmp/executed ]]; then
  failed=$((failed + 1))
  printf 'FAIL: %s\n%s\n' "$current" "$(<"$tmp/executed")"
else
  passed=$((passed + 1))
fi

echo "local-services plan: $passed passed, $failed failed"
((failed == 0))
