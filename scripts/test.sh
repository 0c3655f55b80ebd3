#!/usr/bin/env bash
# The test suite: sets up .venv with the test extra on first use, then runs pytest.
source "$(dirname "$0")/_venv.sh" test
exec .venv/bin/python -m pytest "$@"
