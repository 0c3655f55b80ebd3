#!/usr/bin/env bash
# The main job: sets up .venv on first use, then runs `keras-zoo demo` (arguments pass through).
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/keras-zoo demo "$@"
