#!/usr/bin/env bash
# Runs the Action's mainline command (action.yml): `command` split into words like a shell would
# split plain words (no globbing, no expansion: inputs are data, never code), channel/git/path
# passed as MAINLINE_CHANNEL/MAINLINE_GIT/MAINLINE_PATH, `wait` as --wait. Writes
# `exit-code=N` to $GITHUB_OUTPUT and exits with mainline's code, so a DIVERGED status (3) or
# an UNKNOWN (4) fails the step.
#
# Must never: eval the inputs, or print a secret (the environment is passed through untouched).
set -euo pipefail

bin=${MAINLINE_BIN:-mainline}
command=${INPUT_COMMAND:-}
[ -n "${command//[[:space:]]/}" ] ||
  { echo "mainline action: the 'command' input is empty: say what to run, e.g. command: reconcile" >&2; exit 2; }
set -f # no globbing while splitting
# shellcheck disable=SC2206 # word splitting is the point: `deploy --candidate` is two words
args=($command)
set +f
[ -n "${INPUT_CHANNEL:-}" ] && export MAINLINE_CHANNEL=$INPUT_CHANNEL
[ -n "${INPUT_GIT:-}" ] && export MAINLINE_GIT=$INPUT_GIT
[ -n "${INPUT_PATH:-}" ] && export MAINLINE_PATH=$INPUT_PATH
if [ -n "${INPUT_WAIT:-}" ]; then args+=(--wait "$INPUT_WAIT"); fi

code=0
"$bin" "${args[@]}" || code=$?
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "exit-code=$code" >> "$GITHUB_OUTPUT"; fi
exit "$code"
