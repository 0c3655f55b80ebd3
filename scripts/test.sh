#!/usr/bin/env bash
# The test suite: sets up .venv with the test extra on first use, checks style and types
# (scripts/lint.sh), then runs pytest in two processes, a test file to each in turn (its module
# fixtures are built once); `-n 0` after the script's name runs it in one.
source "$(dirname "$0")/_venv.sh" test
bash scripts/lint.sh
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
