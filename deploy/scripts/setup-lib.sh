# shellcheck shell=bash
# Lists are space-separated words, split on purpose (see local-services.sh's "Lists"): SC2086. The
# functions read and set variables the two callers share with them (mode, missing, to_install,
# py_pkgs, ...; listed at each function): SC2034, SC2154.
# shellcheck disable=SC2086,SC2034,SC2154
#
# Sourced by local-services.sh and pip-install.sh: what both need to set up a machine.
#
#   observe_host    the machine: lookup_path, os_id, os_like, os_label, uid, tty, assume_yes
#   apt_decide      whether and how Debian packages may be installed (the consent rules below)
#   apt_apply       asks, refuses or installs as decided
#   python_observe  the Python side: the system python3, whether its pip may install, the venv
#   python_decide   which Python installs and runs the PyPI tools, and what that needs first
#   python_setup    makes the venv when decided
#   pip_install     pip-installs into that Python
#   run             runs a command, or with --plan prints it
#
# The caller sets `mode` (ensure, check or plan), `rerun_hint` (the command to run in a terminal,
# for the refusal), `log_tag` (the question's prefix) and defines `log`.
#
# Consent (apt): packages are installed only on Debian or Ubuntu (or a derivative: /etc/os-release
# ID or ID_LIKE), with apt-get, through sudo when not root, and:
#   - with CI set (not "false"/"0") or ORDO_SERVICES_ASSUME_YES=1, without asking;
#   - else, from a terminal, after a "[y/N]" question;
#   - else (no terminal, not CI) not at all: one line says how, and the script exits 1.
#
# Python: the PyPI tools (moto for the S3 and SES stand-ins, Schemathesis, check-jsonschema,
# botocore, cfn-lint) go into
#   - the project venv ${XDG_CACHE_HOME:-~/.cache}/ordo/venv when it exists (and runs); else
#   - the system python3 when its pip may install packages (no PEP 668 EXTERNALLY-MANAGED marker
#     in its stdlib directory, or it is itself a venv, and it has pip): pyenv's, say, as before;
#   - else that venv, made first with `python3 -m venv`: on Debian's or Ubuntu's own python3, which
#     refuses pip (PEP 668) and makes venvs only with python3-venv installed, or where there is no
#     python3 at all. python3 and python3-venv, when missing, come from apt under the rules above.
# The justfile and .ci/run put the venv's bin/ first on PATH (a directory that exists only where
# the venv was made), so `python3`, `cfn-lint` and the tests' `python3` are the venv's there.
#
# Only with --plan (mode=plan), for deploy/scripts/test-local-services.sh, these stand in for what
# would be observed (ignored otherwise, so they can never fool a real run):
#   ORDO_SERVICES_FAKE_PATH    where server binaries, python3, apt-get and sudo are looked for
#   ORDO_SERVICES_FAKE_UID     the user id (0 = root)
#   ORDO_SERVICES_FAKE_TTY     1 if stdin is a terminal, 0 if not
#   ORDO_SERVICES_FAKE_PYTHON  what the Python side has, as words: "pip" (the system python3's pip
#                              may install), "venv" (it can make a venv: venv and ensurepip),
#                              "project-venv" (the project venv exists), and for local-services.sh
#                              "moto" (the chosen Python has moto[server] at the pinned version)

# in_list WORD "LIST": is WORD one of LIST's words?
in_list() { [[ " $2 " == *" $1 "* ]]; }

# faked VAR: is VAR set and does it count (only with --plan)?
faked() { [[ $mode == plan && -n ${!1+set} ]]; }

# run CMD...: runs it (its output to stderr, like all of these scripts' own), or with --plan prints
# it ("run: CMD", to stdout like the rest of the plan) instead.
run() {
  if [[ $mode == plan ]]; then
    echo "run: $*"
  else
    "$@" >&2
  fi
}

# --- The machine --------------------------------------------------------------------------------
observe_host() {
  # Where binaries, apt-get and sudo are looked for: PATH plus the sbin directories a non-root PATH
  # often lacks (mariadbd and rabbitmq-server live in /usr/sbin).
  lookup_path="${PATH:-}:/usr/local/sbin:/usr/sbin:/sbin"
  if faked ORDO_SERVICES_FAKE_PATH; then lookup_path=$ORDO_SERVICES_FAKE_PATH; fi

  # The distribution: ID and ID_LIKE from os-release (parsed, not sourced).
  local os_release=${ORDO_SERVICES_OS_RELEASE:-/etc/os-release} key value
  os_id="" os_like=""
  if [[ -r $os_release ]]; then
    while IFS='=' read -r key value || [[ -n $key ]]; do
      value=${value#\"} value=${value%\"} value=${value#\'} value=${value%\'}
      case $key in
        ID) os_id=$value ;;
        ID_LIKE) os_like=$value ;;
      esac
    done <"$os_release"
  fi
  if [[ -n $os_id ]]; then
    os_label=$os_id
  elif [[ $(uname -s 2>/dev/null) == Darwin ]]; then
    os_label=macOS
  else
    os_label="$(uname -s 2>/dev/null || echo unknown) without /etc/os-release"
  fi

  uid=$EUID
  if faked ORDO_SERVICES_FAKE_UID; then uid=$ORDO_SERVICES_FAKE_UID; fi
  if faked ORDO_SERVICES_FAKE_TTY; then
    [[ $ORDO_SERVICES_FAKE_TTY == 1 ]] && tty=true || tty=false
  else
    [[ -t 0 ]] && tty=true || tty=false
  fi
  # CI=true (or any value but false/0) or ORDO_SERVICES_ASSUME_YES=1: install without asking.
  assume_yes=false
  if [[ ${ORDO_SERVICES_ASSUME_YES:-} == 1 || (-n ${CI:-} && ${CI:-} != false && ${CI:-} != 0) ]]; then
    assume_yes=true
  fi
}

# find_bin NAME [SKIP_DIR]: prints the first executable NAME on lookup_path (not in SKIP_DIR).
# Looked at, never run.
find_bin() {
  local d IFS=:
  for d in $lookup_path; do
    [[ -n $d && $d != "${2:-}" && -f $d/$1 && -x $d/$1 ]] && { echo "$d/$1"; return 0; }
  done
  return 1
}
have_bin() { find_bin "$1" >/dev/null; }

# --- apt, with consent ----------------------------------------------------------------------------
# apt_decide: from `missing` (what is missing, for the messages), `to_install` (its Debian packages)
# and `yourself` (what to do instead where this script cannot install), sets
#   install  none | auto | ask | refuse | unsupported
#   priv     "" (root) or "sudo", the prefix of apt-get (and of whatever else needs root)
#   why      for refuse/unsupported: the one line that says what to do instead
apt_decide() {
  install=none priv="" why=""
  [[ -n $to_install ]] || return 0
  if ! in_list debian "$os_id $os_like" && ! in_list ubuntu "$os_id $os_like"; then
    install=unsupported
    why="not installed: $missing; this script installs them only on Debian or Ubuntu (apt-get), not on $os_label: $yourself"
  elif ! have_bin apt-get; then
    install=unsupported
    why="not installed: $missing; this $os_label has no apt-get: $yourself"
  elif [[ $uid != 0 ]] && ! have_bin sudo; then
    install=unsupported
    why="not installed: $missing; installing needs root and there is no sudo: as root run \`apt-get install $to_install\` and rerun"
  else
    [[ $uid == 0 ]] || priv=sudo
    if $assume_yes; then
      install=auto
    elif $tty; then
      install=ask
    else
      install=refuse
      why="not installed: $missing; not installing without a terminal to ask: run \`$rerun_hint\` in a terminal, or with ORDO_SERVICES_ASSUME_YES=1 (CI=true does the same), or \`${priv:+sudo }apt-get install $to_install\` yourself"
    fi
  fi
}

# apt_apply: asks (and exits 1 on no), refuses (one line, exit 1) or installs `to_install`, as
# apt_decide decided. With --plan it prints the question, the exit and the commands instead.
apt_apply() {
  case $install in
    none | auto) ;;
    ask)
      if [[ $mode == plan ]]; then
        echo "ask: install $to_install with apt-get? [y/N] (no: exit 1)"
      else
        local answer
        read -r -p "[${log_tag:-setup}] not installed: $missing. Install $to_install from $os_label's packages with ${priv:+sudo }apt-get? [y/N] " answer || answer=""
        if [[ $answer != [yY]* ]]; then
          log "nothing installed; install them yourself (\`${priv:+sudo }apt-get install $to_install\`) or rerun and answer y"
          exit 1
        fi
      fi
      ;;
    refuse | unsupported)
      log "$why"
      [[ $mode == plan ]] && echo "exit: 1"
      exit 1
      ;;
  esac
  [[ -n $to_install ]] || return 0
  log "not installed: $missing; installing $to_install from $os_label's packages with ${priv:+sudo }apt-get"
  local started_at=$SECONDS versions
  run $priv apt-get update -qq
  run $priv env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $to_install
  if [[ $mode != plan ]]; then
    # shellcheck disable=SC2016  # ${Package} is dpkg-query's field, not the shell's.
    versions=$(dpkg-query -W -f='${Package} ${Version}, ' $to_install)
    log "installed in $((SECONDS - started_at))s: ${versions%, }"
  fi
}

# --- Python ---------------------------------------------------------------------------------------
ordo_venv="${XDG_CACHE_HOME:-$HOME/.cache}/ordo/venv"

# python_observe: sets
#   py_sys       the system python3 ("" when there is none): the first on lookup_path outside the venv
#   py_sys_pip   true when its pip may install packages
#   py_sys_venv  true when it can make a venv with pip in it
#   py_managed   true when it refuses pip because of PEP 668 (for the messages)
#   py_venv      true when the project venv exists and its python runs
# Runs the system python3 once, and only when there is no working venv.
python_observe() {
  py_sys=$(find_bin python3 "$ordo_venv/bin") || py_sys=""
  py_sys_pip=false py_sys_venv=false py_managed=false py_venv=false
  local has
  if faked ORDO_SERVICES_FAKE_PYTHON; then
    has=$ORDO_SERVICES_FAKE_PYTHON
    in_list project-venv "$has" && py_venv=true
    if [[ -n $py_sys ]]; then
      in_list pip "$has" && py_sys_pip=true || py_managed=true
      in_list venv "$has" && py_sys_venv=true
    fi
    return 0
  fi
  if [[ -x $ordo_venv/bin/python3 ]] && "$ordo_venv/bin/python3" -c '' 2>/dev/null; then
    py_venv=true
    return 0
  fi
  [[ -n $py_sys ]] || return 0
  # PEP 668: the EXTERNALLY-MANAGED marker in the stdlib directory, unless python3 is a venv's.
  has=$("$py_sys" -c '
import os, sys, sysconfig, importlib.util as u
words = [m for m in ("pip", "ensurepip", "venv") if u.find_spec(m)]
if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")):
    words.append("managed")
print(" ".join(words))' 2>/dev/null) || has=""
  in_list managed "$has" && py_managed=true
  if ! $py_managed && in_list pip "$has"; then py_sys_pip=true; fi
  if in_list ensurepip "$has" && in_list venv "$has"; then py_sys_venv=true; fi
}

# python_decide: sets
#   py            the Python that installs and runs the tools: "python3" (the system one) or the
#                 venv's python3
#   py_make_venv  true when the venv is to be made first (`python3 -m venv`)
#   py_pkgs       the Debian packages that needs first ("python3 python3-venv", "python3-venv", "")
#   py_missing    the same, for the messages ("python3", "python3-venv", "")
#   py_why        why this Python, for the plan
#   py_yourself   where apt cannot install py_pkgs: what to do instead
python_decide() {
  py=python3 py_make_venv=false py_pkgs="" py_missing="" py_why=""
  py_yourself="install Python 3 with its venv module yourself and rerun"
  if $py_venv; then
    py=$ordo_venv/bin/python3 py_why="the project venv"
  elif $py_sys_pip; then
    py_why="its pip installs"
  else
    py=$ordo_venv/bin/python3 py_make_venv=true
    if [[ -z $py_sys ]]; then
      py_why="new venv: no python3"
      py_pkgs="python3 python3-venv" py_missing=python3
    else
      if $py_managed; then
        py_why="new venv: python3 refuses pip (externally managed, PEP 668)"
      else
        py_why="new venv: python3 has no pip"
      fi
      if ! $py_sys_venv; then
        py_why="$py_why and has no venv module"
        py_pkgs=python3-venv py_missing=python3-venv
        py_yourself="install python3's venv module (Debian: python3-venv) yourself and rerun"
      fi
    fi
  fi
}

# python_setup: makes the venv when decided (--clear: a venv whose python no longer runs, as after
# an upgrade of the system's, is made anew).
python_setup() {
  if $py_make_venv; then
    log "python: making the venv $ordo_venv ($py_why)"
    run python3 -m venv --clear "$ordo_venv"
    py_make_venv=false
  fi
}

# pip_install SPEC...: into the decided Python. The system one as before (root's warning off); a
# venv's pip needs no such option (and Ubuntu 22.04's does not know it).
pip_install() {
  local started_at=$SECONDS
  if [[ $py == python3 ]]; then
    run python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
  else
    run "$py" -m pip install --quiet --disable-pip-version-check "$@"
  fi
  [[ $mode == plan ]] || log "installed in $((SECONDS - started_at))s: $*"
}
