#!/usr/bin/env bash
# Make every sandbox tier this machine can have work, idempotently:
#   1. Debian packages docker.io, runsc (gVisor), bubblewrap, debootstrap (skipped when present);
#   2. a dockerd config that registers runsc as a runtime (network off; host Unix sockets allowed,
#      which the agent protocol needs), and dockerd started in the background if `docker info` fails
#      (no host network changes: --iptables=false --bridge=none; log in /var/log/symbi-dockerd.log);
#   3. the local agent image, built without any registry: `symbiont sandbox prepare-image`.
#
# Usage: .ci/setup-sandboxes.sh [PYTHON]    (or SYMBI_PYTHON=...; default .venv/bin/python)
# Needs root for steps 1-2; without root it only reports and builds the image if Docker is reachable.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${1:-${SYMBI_PYTHON:-.venv/bin/python}}"
DOCKERD_CONFIG="${SYMBI_DOCKERD_CONFIG:-/etc/symbi/dockerd.json}"
DOCKERD_LOG=/var/log/symbi-dockerd.log
export DEBIAN_FRONTEND=noninteractive

say() { echo "setup-sandboxes: $*"; }
is_root() { [ "$(id -u)" = 0 ]; }

# -- 1. packages --------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -eq 0 ]; then
    say "packages present: docker.io runsc bubblewrap debootstrap"
elif is_root; then
    say "installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || say "WARNING: apt-get install ${missing[*]} failed; those tiers will report themselves unavailable"
else
    say "WARNING: not root, cannot install ${missing[*]}"
fi

# -- 2. dockerd with runsc registered ------------------------------------------
RUNSC="$(command -v runsc || echo /usr/bin/runsc)"
WANT_CONFIG="{\"runtimes\": {\"runsc\": {\"path\": \"$RUNSC\", \"runtimeArgs\": [\"--network=none\", \"--fsgofer-host-uds\"]}}}"
if is_root; then
    mkdir -p "$(dirname "$DOCKERD_CONFIG")"
    if [ "$(cat "$DOCKERD_CONFIG" 2>/dev/null)" != "$WANT_CONFIG" ]; then
        echo "$WANT_CONFIG" > "$DOCKERD_CONFIG"
        say "wrote $DOCKERD_CONFIG (runsc registered)"
    else
        say "$DOCKERD_CONFIG already registers runsc"
    fi
fi
if docker info >/dev/null 2>&1; then
    say "dockerd already running"
    if ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
        say "WARNING: the running dockerd does not know runsc; restart it with --config-file $DOCKERD_CONFIG"
    fi
elif is_root && command -v dockerd >/dev/null 2>&1; then
    # A dockerd/containerd killed without a clean shutdown (as at the end of a session) leaves pid
    # files behind, and a new dockerd then refuses to start: remove them when neither is running.
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        for stale in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
            if [ -e "$stale" ]; then rm -f "$stale"; say "removed stale $stale"; fi
        done
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd --iptables=false --bridge=none --config-file "$DOCKERD_CONFIG" >"$DOCKERD_LOG" 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && break
        sleep 1
    done
    if docker info >/dev/null 2>&1; then
        say "dockerd is up"
    else
        say "WARNING: dockerd did not come up within 60 s; see $DOCKERD_LOG"
    fi
else
    say "WARNING: Docker is not reachable and cannot be started here"
fi

# -- 3. the local agent image ----------------------------------------------------
if docker info >/dev/null 2>&1; then
    if [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1; then
        say "preparing the agent image"
        "$PYTHON" -m engine.sandbox.cli prepare-image || say "WARNING: prepare-image failed"
    else
        say "WARNING: $PYTHON not found; run: symbiont sandbox prepare-image"
    fi
fi

# -- report ----------------------------------------------------------------------
if [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -m engine.sandbox.cli doctor || true
fi
exit 0
