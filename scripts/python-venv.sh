#!/usr/bin/env bash
# Creates .venv-interop/ at the repository root with the pinned Python Celery (and Flower) used
# by the interop tests (celeriac/tests/python/requirements.txt), and prints the venv's python path.
# `scripts/python-venv.sh 5.7` makes .venv-celery57/ instead, the second Celery of the canvas
# interop matrix (requirements-5.7.txt).
#
# Idempotent: a marker file inside the venv records the hash of requirements.txt; when it
# matches and celery imports, nothing is installed again.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${repo_root}/.venv-interop"
requirements="${repo_root}/celeriac/tests/python/requirements.txt"
probe='import celery, kombu, redis, flower, django, django_celery_results, django_celery_beat, psycopg, sqlalchemy, ephem'
if [[ "${1:-}" == "5.7" ]]; then
    venv_dir="${repo_root}/.venv-celery57"
    requirements="${repo_root}/celeriac/tests/python/requirements-5.7.txt"
    probe='import celery, kombu, redis, ephem'
fi
marker="${venv_dir}/.requirements.sha256"
python_bin="${venv_dir}/bin/python"
wanted_hash="$(sha256sum "${requirements}" | cut -d' ' -f1)"

if [[ -x "${python_bin}" && -f "${marker}" && "$(cat "${marker}")" == "${wanted_hash}" ]] \
    && "${python_bin}" -c "${probe}" 2>/dev/null; then
    echo "${python_bin}"
    exit 0
fi

if [[ ! -x "${python_bin}" ]]; then
    if ! python3 -m venv "${venv_dir}"; then
        # Debian's own python3 ships without ensurepip until python3-venv is installed.
        if [[ "$(command -v python3)" == /usr/bin/python3 ]] && command -v apt-get >/dev/null; then
            rm -rf "${venv_dir}"
            apt-get install -y python3-venv
            python3 -m venv "${venv_dir}"
        else
            echo "python-venv.sh: 'python3 -m venv' failed; install a python3 with venv support" >&2
            exit 1
        fi
    fi
fi

"${python_bin}" -m pip install --quiet --disable-pip-version-check --upgrade pip
"${python_bin}" -m pip install --quiet --disable-pip-version-check -r "${requirements}"
echo "${wanted_hash}" > "${marker}"
echo "${python_bin}"
