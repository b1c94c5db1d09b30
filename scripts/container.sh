#!/usr/bin/env bash
# podman for imgworker's container image, kept to this checkout: its
# configuration, image store and run state live under target/podman
# (ignored by git); nothing in /etc/containers is read or changed. Needs
# root and Debian's podman, runc, catatonit and debootstrap (scripts/test.sh
# installs them).
#
#   scripts/container.sh base           the Debian base image the Dockerfile's
#                                       FROM lines name, made here (there is
#                                       no registry): `debootstrap --variant=
#                                       minbase bookworm`, imported as
#                                       localhost/debian:bookworm-slim; kept
#                                       once made
#   scripts/container.sh podman ARGS    podman with this configuration
#   scripts/container.sh clean          every container, pod and image of this
#                                       store, and the store itself
#
# The configuration works around what podman 4.3 meets on such machines:
# crun fails on hybrid cgroups (runc instead); with no systemd, cgroups are
# managed directly and events go to a file; root may lack CAP_SYS_RESOURCE,
# so podman's default ulimits (1048576 open files) cannot be set and the
# defaults here stay within this shell's hard limits; containers share the
# host's network (no bridge, no iptables rules left behind).
set -euo pipefail
# No cd: paths given to `podman` are the caller's.
root=$(cd "$(dirname "$0")/.." && pwd)/target/podman
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=localhost/debian:bookworm-slim

configure() {
  mkdir -p "$root/conf"
  local nofile nproc
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  nproc=4096
  cat >"$root/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$root/run/events/events.log"
tmp_dir = "$root/run/libpod"
static_dir = "$root/storage/libpod"
volume_path = "$root/storage/volumes"

[network]
network_config_dir = "$root/net"
EOF
  cat >"$root/conf/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$root/storage"
runroot = "$root/run/storage"
EOF
  cat >"$root/conf/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "disabled"
EOF
  export CONTAINERS_CONF=$root/conf/containers.conf
  export CONTAINERS_STORAGE_CONF=$root/conf/storage.conf
  export CONTAINERS_REGISTRIES_CONF=$root/conf/registries.conf
}

need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || {
      echo "$tool is not installed: run scripts/test.sh (as root), which installs podman, runc, catatonit and debootstrap" >&2
      exit 1
    }
  done
}

make_base() {
  need podman debootstrap
  if podman image exists "$base"; then
    echo "$base is already in target/podman" >&2
    return
  fi
  dir=$(mktemp -d "$root/rootfs.XXXXXX")
  trap 'rm -rf "${dir:-}"' EXIT
  trap 'exit 1' INT TERM
  echo "making $base with debootstrap --variant=minbase bookworm from $mirror (about a minute)" >&2
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$root/debootstrap.log" 2>&1 || {
    tail -20 "$root/debootstrap.log" >&2
    echo "debootstrap failed (its log: target/podman/debootstrap.log)" >&2
    exit 1
  }
  # What a slim image leaves out: downloaded packages, package lists,
  # documentation, manual pages and locales; the host's resolver and name,
  # which debootstrap copies in.
  rm -f "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin
  rm -rf "$dir"/var/lib/apt/lists/*
  mkdir -p "$dir/var/lib/apt/lists/partial"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  : >"$dir/etc/resolv.conf"
  : >"$dir/etc/hostname"
  # podman creates /etc/mtab in a container that lacks it, which shows as a
  # write in `podman diff`.
  ln -sf /proc/mounts "$dir/etc/mtab"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$mirror" "$mirror" "$mirror" >"$dir/etc/apt/sources.list"
  tar --numeric-owner -C "$dir" -c . | podman import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$base" >/dev/null
  echo "$base imported into target/podman" >&2
}

configure
case "${1:-}" in
  base) make_base ;;
  podman)
    shift
    need podman runc
    exec podman "$@"
    ;;
  clean)
    need podman
    podman pod rm -af -t 0 >/dev/null 2>&1 || true
    podman rm -af -t 0 >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
    rm -rf "$root"
    echo "removed target/podman" >&2
    ;;
  *)
    echo "usage: scripts/container.sh base | podman ARGS... | clean" >&2
    exit 2
    ;;
esac
