# shellcheck shell=bash
# Installs and starts what the tests need on a Debian machine: Docker Engine, a
# local image registry, Xvfb, OpenSSH (its server is started per test by the OpenStack
# emulator's fixtures), QEMU; builds the tests' base image and the VM image locally (no
# image can be pulled here). Sourced by .ci/test; idempotent, so a second run reuses what runs.
# State (logs, pids, registry storage) lives in .ci/.state (git-ignored).

STATE="${MODELSHIP_CI_STATE:-$PWD/.ci/.state}"
mkdir -p "$STATE"

# The VM image behind the OpenStack emulator's QEMU backend (cached between runs).
# shellcheck source=.ci/vm.sh
source "$(dirname "${BASH_SOURCE[0]}")/vm.sh"

APT_PACKAGES=(
  docker.io docker-registry apache2-utils debootstrap
  xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-xinerama0
  libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0 libegl1 libgl1
  libfontconfig1 libdbus-1-3 imagemagick wrk binutils curl
  openssh-server openssh-client
  dbus gnome-keyring
)
# kubectl, for the Kubernetes emulator's tests: Debian's kubernetes-client unless one is installed
command -v kubectl >/dev/null 2>&1 || APT_PACKAGES+=(kubernetes-client)

log() { printf '[services] %s\n' "$*" >&2; }

install_system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or install them)"
    return 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 \
    || { tail -20 "$STATE/apt.log" >&2; return 1; }
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then log "Docker Engine already running"; return 0; fi
  log "starting dockerd"
  # --iptables=false: this sandbox has no iptables; publishing to 127.0.0.1 still works.
  nohup dockerd --iptables=false >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$STATE/dockerd.pid"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "dockerd ready"; return 0; }
    sleep 1
  done
  log "dockerd did not start:"; tail -20 "$STATE/dockerd.log" >&2; return 1
}

build_base_image() {
  local name="${MODELSHIP_TEST_BASE_IMAGE:-modelship-test-base:bookworm}"
  if docker image inspect "$name" >/dev/null 2>&1; then log "base image $name present"; return 0; fi
  local cache="${MODELSHIP_CI_CACHE:-/var/cache/modelship-ci}"
  mkdir -p "$cache"
  if [ ! -s "$cache/bookworm-rootfs.tar" ]; then
    log "debootstrap bookworm (about a minute)"
    local root; root=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl \
      bookworm "$root" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
      || { tail -20 "$STATE/debootstrap.log" >&2; rm -rf "$root"; return 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$cache/bookworm-rootfs.tar.tmp" . && mv "$cache/bookworm-rootfs.tar.tmp" "$cache/bookworm-rootfs.tar"
    rm -rf "$root"
  fi
  log "importing $name"
  docker import "$cache/bookworm-rootfs.tar" "$name" >/dev/null
}

start_registry() {
  local port="${MODELSHIP_TEST_REGISTRY_PORT:-5055}"
  if curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then log "registry running on $port"; return 0; fi
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
  nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 1 30); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && { log "registry ready on 127.0.0.1:$port"; return 0; }
    sleep 0.5
  done
  log "registry did not start"; tail -20 "$STATE/registry.log" >&2; return 1
}

start_xvfb() {
  local display="${MODELSHIP_XVFB_DISPLAY:-:91}"
  local lock="/tmp/.X${display#:}-lock"
  if [ -e "$lock" ] && kill -0 "$(tr -d ' ' <"$lock")" 2>/dev/null; then log "Xvfb already on $display"; return 0; fi
  rm -f "$lock" "/tmp/.X11-unix/X${display#:}"
  nohup Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$STATE/xvfb.log" 2>&1 &
  echo $! >"$STATE/xvfb.pid"
  for _ in $(seq 1 30); do
    [ -e "/tmp/.X11-unix/X${display#:}" ] && { log "Xvfb on $display"; return 0; }
    sleep 0.2
  done
  log "Xvfb did not start"; cat "$STATE/xvfb.log" >&2; return 1
}

start_services() {
  install_system_packages || return 1
  start_dockerd || return 1
  build_base_image || return 1
  vm_install || return 1
  vm_build_image || return 1
  start_registry || return 1
  start_xvfb || return 1
  export MODELSHIP_TEST_BASE_IMAGE="${MODELSHIP_TEST_BASE_IMAGE:-modelship-test-base:bookworm}"
  export MODELSHIP_TEST_REGISTRY="127.0.0.1:${MODELSHIP_TEST_REGISTRY_PORT:-5055}"
  export MODELSHIP_XVFB_DISPLAY="${MODELSHIP_XVFB_DISPLAY:-:91}"
}
