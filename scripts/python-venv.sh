#!/usr/bin/env bash
# Creates .venv-interop/ at the repository root with the pinned Python Celery (and Flower) used
# by the interop tests (celeriac/tests/python/requirements.txt), and prints the venv's python path.
#
# Idempotent: a marker file inside the venv records the hash of requirements.txt; when it
# matches and celery imports, nothing is installed again.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${repo_root}/.venv-interop"
requirements="${repo_root}/celeriac/tests/python/requirements.txt"
marker="${venv_dir}/.requirements.sha256"
python_bin="${venv_dir}/bin/python"
wanted_hash="$(sha256sum "${requirements}" | cut -d' ' -f1)"

if [[ -x "${python_bin}" && -f "${marker}" && "$(cat "${marker}")" == "${wanted_hash}" ]] \
    && "${python_bin}" -c 'import celery, kombu, redis, flower' 2>/dev/null; then
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
