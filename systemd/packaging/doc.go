// Package packaging holds the Debian packaging of relay and its tests; it has
// no Go API. build-deb.sh ARCH VERSION BIN_DIR OUT_DIR builds
// relay_<version>_<arch>.deb with nfpm (pinned in the script, never in
// go.mod) from nfpm.yaml and the maintainer scripts in scripts/.
//
// What the package promises, and the test installs an amd64 .deb into a
// throwaway root to check: the binaries in /usr/bin, the unit at
// /lib/systemd/system/relayd.service (the same text as systemd.UnitFile),
// the udev rule, a polkit rule that lets user relay power off/reboot, the
// example config as the conffile /etc/relay/relay.toml (root:relay 0640 via
// dpkg-statoverride, never overwritten once edited), an empty
// /usr/share/relay/templates for local template overrides, the system user
// and group relay in dialout and gpio, and /var/lib/relay relay:relay 0700.
// A first install leaves relayd stopped and disabled (the config needs the
// broker first); an upgrade restarts it if it was running. Purge removes the
// config and sets /var/lib/relay aside as /var/lib/relay.purged-<time>
// (outbox and signal-cli keys are not recreatable); the user stays.
package packaging
