#!/usr/bin/env bash
# Prepare .venv on Debian 12 / Ubuntu: Debian's MPI, PETSc, mpi4py, h5py and matplotlib, a venv that
# sees them, and mlpar installed editable with its test tools. Idempotent: what is
# already there is skipped. (Clusters: see README, "Running with your site's PETSc".)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# python3-matplotlib (for python -m mlpar.plot) is Debian's: built against Debian's numpy 1.24,
# where the index's wheels would pull numpy 2 into the venv.
PKGS="python3-venv python3-petsc4py-real python3-mpi4py python3-h5py-mpi python3-scipy openmpi-bin python3-pytest python3-matplotlib"

missing=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null | awk '$4 != "installed" {print $1}' || true)
for p in $PKGS; do dpkg-query -W "$p" >/dev/null 2>&1 || missing="$missing $p"; done
missing=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ -n "${missing// /}" ]; then
    echo "setup: installing Debian packages: $missing"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV (with Debian's site packages)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Debian's petsc4py finds PETSc through PETSC_DIR or the petsc-dev alternative; point it at
# the installed real-scalar PETSc with a .pth file (runs at interpreter start).
if ! "$VENV/bin/python" -c 'import petsc4py' 2>/dev/null; then
    petsc_dir=$(ls -d /usr/lib/petscdir/petsc*/x86_64-linux-gnu-real /usr/lib/petscdir/petsc*/*-real 2>/dev/null | head -n 1)
    [ -n "$petsc_dir" ] || { echo "setup: no Debian PETSc found under /usr/lib/petscdir" >&2; exit 1; }
    echo "$petsc_dir/lib/python3/dist-packages" > "$site/zz-debian-petsc.pth"
fi
stamp="$VENV/.mlpar-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints-debian.txt -nt "$stamp" ]; then
    echo "setup: installing mlpar (editable) and test tools into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -c constraints-debian.txt \
        "scipy>=1.15,<1.16" pyamg pytest-timeout mpmath
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
    touch "$stamp"
fi
"$VENV/bin/python" -c 'import mlpar, mpi4py, petsc4py, h5py, numpy, scipy, pyamg, matplotlib; from petsc4py import PETSc' \
    || { echo "setup: the environment in $VENV does not import" >&2; exit 1; }
echo "setup: $VENV ready"
