#!/bin/sh
# Install Amity into a virtualenv at PREFIX from the source tree SOURCE (default: the current folder),
# with the container helpers beside it. The Dockerfile's build step; tests/integration/test_deploy.py
# runs it too, so what the image gets is what the tests exercised.
#   usage: install.sh PREFIX [SOURCE]
set -eu
prefix=$1
source=${2:-.}
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet "$source"
install -m 0644 "$source/deploy/docker/healthcheck.py" "$prefix/healthcheck.py"
# A console script of the virtualenv: its shebang names the virtualenv's Python, whatever PATH says.
{ echo "#!$prefix/bin/python"; tail -n +2 "$source/deploy/docker/apply_topology.py"; } > "$prefix/bin/amity-apply-topology"
chmod 0755 "$prefix/bin/amity-apply-topology"
"$prefix/bin/amity" --help > /dev/null
