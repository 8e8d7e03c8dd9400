#!/usr/bin/env bash
# Creates .venv-flower/ at the repository root with Flower 2.2 and the pinned Celery 5.4 for the
# events benchmark (examples/shop/benches/events/requirements-flower.txt), and prints the venv's python.
#
# Idempotent like scripts/python-venv.sh: a marker records the hash of the requirements; when it
# matches and flower imports, nothing is installed again.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_dir="${repo_root}/.venv-flower"
requirements="${repo_root}/examples/shop/benches/events/requirements-flower.txt"
marker="${venv_dir}/.requirements.sha256"
python_bin="${venv_dir}/bin/python"
wanted_hash="$(sha256sum "${requirements}" | cut -d' ' -f1)"

if [[ -x "${python_bin}" && -f "${marker}" && "$(cat "${marker}")" == "${wanted_hash}" ]] \
    && "${python_bin}" -c 'import flower, celery, kombu, redis' 2>/dev/null; then
    echo "${python_bin}"
    exit 0
fi

if [[ ! -x "${python_bin}" ]]; then
    python3 -m venv "${venv_dir}"
fi

"${python_bin}" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"${python_bin}" -m pip install --quiet --disable-pip-version-check -r "${requirements}" >&2
echo "${wanted_hash}" > "${marker}"
echo "${python_bin}"
