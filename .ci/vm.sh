# shellcheck shell=bash
# The Debian bookworm VM image behind the OpenStack emulator's QEMU backend
# (tests/emulators/openstack/qemu.py): host packages, image build, cache.
#
#   source .ci/vm.sh && vm_install && vm_build_image   # from .ci/services.sh
#   bash .ci/vm.sh [install|build|all]                 # by hand (default: all)
#
# The image (Debian bookworm: cloud-init for a NoCloud seed, openssh-server, docker.io,
# the Debian kernel) takes 2-4.5 minutes to build; it is cached under
# ${MODELSHIP_CI_CACHE:-/var/cache/modelship-ci}/vm/ (base.qcow2, vmlinuz, initrd.img,
# image.stamp) and a run that finds the cache with the same stamp takes well under a
# second. A change to the image's recipe below must bump VM_IMAGE_REV, which rebuilds it.
# Exports MODELSHIP_VM_IMAGE_DIR. Idempotent; safe to run twice at once (flock).
#
# Pitfalls handled (found building this image on this kind of machine, see the
# shared VM recipe): python3-cffi-backend must be in debootstrap's --include (it cannot
# resolve the virtual python3-cffi-backend-api-* that cloud-init needs); the en_US.UTF-8
# locale must be generated (cloud-init's locale module fails otherwise); no AppArmor
# (the kernel is booted with apparmor=0 or `docker run` fails); manage_etc_hosts:
# localhost; networkd DHCP on eth*/en* (boot with net.ifnames=0); an empty machine-id
# and no SSH host keys in the image, so each VM gets its own on first boot.

VM_IMAGE_REV="bookworm-3"   # bump on any change to the image recipe below
VM_SUITE=bookworm
VM_MIRROR="${MODELSHIP_VM_MIRROR:-http://deb.debian.org/debian}"
VM_DISK_SIZE=8G             # ext4 size inside base.qcow2 (sparse: costs only what is used)
VM_HOST_PACKAGES=(qemu-system-x86 qemu-utils debootstrap e2fsprogs cloud-image-utils genisoimage)
VM_GUEST_PACKAGES=python3-cffi-backend,locales,systemd-sysv,udev,dbus,kmod,linux-image-amd64,initramfs-tools,cloud-init,openssh-server,docker.io,ca-certificates,iproute2,iptables,sudo,procps,netbase,python3,e2fsprogs,less

MODELSHIP_VM_IMAGE_DIR="${MODELSHIP_VM_IMAGE_DIR:-${MODELSHIP_CI_CACHE:-/var/cache/modelship-ci}/vm}"
export MODELSHIP_VM_IMAGE_DIR

vm_log() { printf '[vm] %s\n' "$*" >&2; }

# The stamp names everything the image is made of: a cache with another stamp is stale.
vm_image_stamp() {
  printf '%s suite=%s disk=%s packages=%s\n' \
    "$VM_IMAGE_REV" "$VM_SUITE" "$VM_DISK_SIZE" "$VM_GUEST_PACKAGES"
}

vm_image_ready() {
  local d="$MODELSHIP_VM_IMAGE_DIR"
  [ -s "$d/base.qcow2" ] && [ -s "$d/vmlinuz" ] && [ -s "$d/initrd.img" ] \
    && [ "$(cat "$d/image.stamp" 2>/dev/null)" = "$(vm_image_stamp)" ]
}

vm_install() {
  local missing=() p
  for p in "${VM_HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    vm_log "missing Debian packages: ${missing[*]} (run as root, or install them)"
    return 1
  fi
  vm_log "installing ${missing[*]}"
  local log="${TMPDIR:-/tmp}/modelship-vm-apt.$$.log"
  { apt-get -o DPkg::Lock::Timeout=600 update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"$log" 2>&1 \
    || { tail -20 "$log" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
}

# The build runs as its own `bash .ci/vm.sh _build` process with `set -e`: inside a
# function of a sourcing shell, `set -e` is ignored whenever the caller writes
# `vm_build_image || return 1`, and the sourcing shell's options must not change.
VM_SH="$(realpath "${BASH_SOURCE[0]}")"

_vm_configure_rootfs() {
  local R=$1
  echo modelship-vm >"$R/etc/hostname"
  printf '/dev/vda / ext4 defaults,discard 0 1\n' >"$R/etc/fstab"
  # Networking: systemd-networkd DHCP on any eth*/en* NIC (slirp hands out 10.0.2.15);
  # cloud-init's own network config is off.
  mkdir -p "$R/etc/systemd/network" "$R/etc/systemd/system/multi-user.target.wants" \
    "$R/etc/systemd/system/sockets.target.wants" \
    "$R/etc/systemd/system/network-online.target.wants"
  printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' >"$R/etc/systemd/network/20-dhcp.network"
  ln -sf /lib/systemd/system/systemd-networkd.service \
    "$R/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  ln -sf /lib/systemd/system/systemd-networkd.socket "$R/etc/systemd/system/sockets.target.wants/"
  ln -sf /lib/systemd/system/systemd-networkd-wait-online.service \
    "$R/etc/systemd/system/network-online.target.wants/"
  # bookworm's systemd has no resolved; slirp's DNS is 10.0.2.3 (restrict=on answers nothing).
  rm -f "$R/etc/resolv.conf"
  echo 'nameserver 10.0.2.3' >"$R/etc/resolv.conf"
  mkdir -p "$R/etc/cloud/cloud.cfg.d"
  cat >"$R/etc/cloud/cloud.cfg.d/90-modelship-vm.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
manage_etc_hosts: localhost
EOF
  # Per-VM identity on first boot: machine-id, SSH host keys (cloud-init makes them and
  # prints them on the serial console).
  : >"$R/etc/machine-id"
  rm -f "$R/var/lib/dbus/machine-id" "$R"/etc/ssh/ssh_host_*
  rm -f "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/*.bin
  rm -rf "$R"/var/lib/apt/lists/*
  # cloud-init's locale module runs `update-locale LANG=en_US.UTF-8`.
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$R/etc/locale.gen"
  chroot "$R" locale-gen >/dev/null
  # No apt timers in a short-lived test VM.
  rm -f "$R"/etc/systemd/system/timers.target.wants/apt-daily*.timer
  # The initrd must carry virtio_blk/virtio_pci and ext4 (initramfs-tools' MODULES=most does).
  local mods
  mods=$(chroot "$R" lsinitramfs /initrd.img)
  for m in virtio_blk virtio_pci virtio_net ext4; do
    grep -q "/$m\.ko" <<<"$mods" || { echo "initrd lacks $m" >&2; exit 1; }
  done
}

_vm_build() {
  local d=$1 b=$1/.build
  rm -rf "$b"
  mkdir -p "$b"
  local t0=$SECONDS
  vm_log "debootstrap $VM_SUITE for the VM image (a few minutes; log: $b/debootstrap.log)"
  debootstrap --variant=minbase --include="$VM_GUEST_PACKAGES" \
    "$VM_SUITE" "$b/rootfs" "$VM_MIRROR" >"$b/debootstrap.log" 2>&1 \
    || { tail -20 "$b/debootstrap.log" >&2; exit 1; }
  vm_log "debootstrap done in $((SECONDS - t0)) s; configuring"
  _vm_configure_rootfs "$b/rootfs"
  cp -L "$b/rootfs/vmlinuz" "$b/vmlinuz"
  cp -L "$b/rootfs/initrd.img" "$b/initrd.img"
  # ext4 straight from the directory (nothing mounted), then qcow2 for the overlays.
  mkfs.ext4 -q -F -L rootfs -d "$b/rootfs" "$b/base.raw" "$VM_DISK_SIZE" >/dev/null
  rm -rf "$b/rootfs"
  qemu-img convert -f raw -O qcow2 "$b/base.raw" "$b/base.qcow2"
  rm -f "$b/base.raw"
  chmod 0444 "$b/base.qcow2"
  rm -f "$d/image.stamp"
  mv -f "$b/base.qcow2" "$b/vmlinuz" "$b/initrd.img" "$d/"
  vm_image_stamp >"$d/image.stamp"
  rm -rf "$b"
  vm_log "VM image built in $((SECONDS - t0)) s: $(du -sh "$d/base.qcow2" | cut -f1) in $d"
}

vm_build_image() {
  mkdir -p "$MODELSHIP_VM_IMAGE_DIR" || return 1
  if vm_image_ready; then
    vm_log "VM image cached in $MODELSHIP_VM_IMAGE_DIR"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    vm_log "building the VM image needs root (debootstrap, chroot)"
    return 1
  fi
  # One builder at a time; whoever waited finds the image made by the other.
  (
    flock 9
    vm_image_ready && exit 0
    bash "$VM_SH" _build
  ) 9>"$MODELSHIP_VM_IMAGE_DIR/.lock"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-all}" in
    install) vm_install ;;
    build) vm_build_image ;;
    all) vm_install && vm_build_image ;;
    _build) _vm_build "$MODELSHIP_VM_IMAGE_DIR"; exit ;;
    *) sed -n 2,20p "$0" >&2; exit 2 ;;
  esac
  echo "MODELSHIP_VM_IMAGE_DIR=$MODELSHIP_VM_IMAGE_DIR"
fi
