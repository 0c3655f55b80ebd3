# Sourced by run.sh and test.sh: makes .venv and installs the project (with extras "$1") into it
# when it is missing or setup.cfg / pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "keras_zoo needs Python >= 3.10; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
want="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing keras_zoo${extras:+[$extras]} into .venv (first run: a few minutes)"
    .venv/bin/python -m pip install --disable-pip-version-check -e ".${extras:+[$extras]}"
    if [[ ",$extras," == *,test,* ]]; then
        # the tracking tests' references, whose declared dependencies would downgrade NumPy
        # (sort-track pins filterpy 1.4.5 and scipy 1.9.3) or clash with OpenCV (TrackEval and
        # Roboflow's trackers want opencv-python, supervision PyAV): installed alone, over the
        # test extra's numpy, scipy, filterpy, pydeprecate, defusedxml and rich
        .venv/bin/python -m pip install --disable-pip-version-check --no-deps \
            sort-track==0.0.8 trackeval==1.3.0 supervision==0.31.2 trackers==2.6.1
    fi
    echo "$want" > "$stamp"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
