#!/usr/bin/env bash
# Lists are space-separated words, split on purpose: SC2086.
# shellcheck disable=SC2086
#
# Installs Python packages from PyPI for Ordo's checks and tests (Schemathesis for `just tools`;
# check-jsonschema, botocore and cfn-lint for .ci/run) into the project's Python:
#   - the project venv ${XDG_CACHE_HOME:-~/.cache}/ordo/venv when it exists;
#   - else the system python3 when its pip may install packages (pyenv's, say: exactly as before,
#     `python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore SPEC`);
#   - else that venv, made first with `python3 -m venv`: Debian's and Ubuntu's own python3 refuses
#     pip (PEP 668, "externally-managed-environment"), and a minimal machine may have no python3.
#     A missing python3, or python3-venv where the venv needs it, is installed with apt-get first,
#     under the same rules as local-services.sh's servers: without asking when CI is set or
#     ORDO_SERVICES_ASSUME_YES=1, after asking in a terminal, else not at all (one line, exit 1).
# The justfile and .ci/run put the venv's bin/ first on PATH, so what is installed there is what
# `python3 -m check_jsonschema`, `cfn-lint` and the Schemathesis test's `python3` run. The rules are
# setup-lib.sh's, shared with local-services.sh (which installs moto the same way).
#
#   deploy/scripts/pip-install.sh SPEC...          install (callers check first what is missing)
#   deploy/scripts/pip-install.sh --plan SPEC...   print what it would install and run, change nothing
#
# With --plan the ORDO_SERVICES_FAKE_* variables of setup-lib.sh stand in for the machine
# (deploy/scripts/test-local-services.sh tests it so).
set -euo pipefail

mode=ensure
if [[ ${1:-} == --plan ]]; then
  mode=plan
  shift
fi
(($#)) || { echo "usage: $0 [--plan] SPEC..." >&2; exit 2; }

log_tag=pip
rerun_hint="just tools"
log() { printf '[pip] %s\n' "$*" >&2; }

# shellcheck source=deploy/scripts/setup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-lib.sh"

observe_host
python_observe
python_decide
to_install=$py_pkgs missing=$py_missing yourself=$py_yourself
apt_decide

if [[ $mode == plan ]]; then
  echo "python: $py ($py_why)"
  echo "install: $install${priv:+ (sudo)}"
fi
apt_apply
python_setup
log "installing $* with pip into $py"
pip_install "$@"
if [[ $mode == plan ]]; then
  echo "exit: 0"
fi
