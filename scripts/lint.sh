#!/usr/bin/env bash
# Style and types: ruff's lint and format checks on the package, the tests and the scripts,
# and mypy on the package (settings in pyproject.toml). scripts/test.sh runs it first.
source "$(dirname "$0")/_venv.sh" test
.venv/bin/ruff check keras_zoo tests scripts
.venv/bin/ruff format --check keras_zoo tests scripts
.venv/bin/mypy
