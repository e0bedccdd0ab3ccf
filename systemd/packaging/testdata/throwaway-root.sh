#!/bin/sh
# throwaway-root.sh DIR CMD [ARG...]
#
# Runs CMD (as root) in a private mount namespace where $ROOT (= DIR/root) is a complete Debian
# root made of overlays over this machine's /usr, /etc and /var, with all writes going to DIR/up.
# Nothing on the host changes; the state persists in DIR between calls, so a test can install,
# upgrade and purge a package in steps. CMD sees ROOT in its environment, e.g.
#   throwaway-root.sh /tmp/t sh -c 'dpkg --root="$ROOT" -i relay.deb'
#   throwaway-root.sh /tmp/t sh -c 'chroot "$ROOT" id relay'
# dpkg --root runs the maintainer scripts chrooted into ROOT, so the real adduser, addgroup and
# dpkg-statoverride act on ROOT's /etc and /var. ROOT has no /run/systemd/system and no /run/udev,
# so the scripts skip systemctl and udevadm as they would in a chroot or image build.
set -eu
dir=$1; shift
if [ "${RELAY_THROWAWAY_NS:-}" != 1 ]; then
	RELAY_THROWAWAY_NS=1 exec unshare --mount --propagation private "$0" "$dir" "$@"
fi
root=$dir/root
mkdir -p "$root"
for d in usr etc var; do
	mkdir -p "$root/$d" "$dir/up/$d" "$dir/work/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$dir/up/$d,workdir=$dir/work/$d" "$root/$d"
done
for l in bin sbin lib lib64; do
	if [ -L "/$l" ] && [ ! -e "$root/$l" ]; then ln -s "usr/$l" "$root/$l"; fi
done
mkdir -p "$root/dev" "$root/proc" "$root/run" "$root/tmp"
chmod 1777 "$root/tmp"
mount --rbind /dev "$root/dev"
mount --rbind /proc "$root/proc"
ROOT=$root
export ROOT
"$@"
