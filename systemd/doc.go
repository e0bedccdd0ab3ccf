// Package systemd owns everything that ties relayd to systemd on the
// appliance: the hardened unit (relayd.service.tmpl, rendered by
// kardianos/service for "relayd install" and shipped verbatim as
// relayd.service in the .deb), the service-control helper behind
// "relayd install | uninstall | start | stop | restart | status", the
// sd_notify glue (READY, one-line STATUS, STOPPING, and a watchdog that
// pings only while the main loop is healthy), the udev rule for the LTE
// modem and gpiochips, and the install notes (INSTALL.md). The Debian
// packaging lives in systemd/packaging.
//
// Promises:
//   - The unit relayd.service is exactly what kardianos/service v1.3.0 renders
//     from relayd.service.tmpl for ServiceConfig(DefaultExecutable,
//     DefaultConfigPath); a test renders it through kardianos's own Install
//     and fails on drift ("go generate ./systemd" rewrites it).
//   - Its "systemd-analyze security --offline=yes" exposure stays at or below
//     2.5 ("OK"); a test checks that when systemd-analyze is installed.
//   - Notifier never blocks relayd and is a no-op outside systemd
//     (NOTIFY_SOCKET unset).
//
// Decisions, and why:
//   - MemoryDenyWriteExecute is off. relayd starts signal-cli (a JVM) as its
//     child, and a child inherits the unit's seccomp filter; HotSpot's JIT
//     needs writable+executable mappings. Measured: signal-cli 0.13.19 under
//     prctl(PR_SET_MDWE) dies with "Error occurred during initialization of
//     VM / Failed to mark memory page as executable". The alternative, a
//     separate signal-cli unit, would split the lifecycle that signalbridge
//     supervises (restart on hang, stop before power-off) across two units.
//     The score cost is 0.1; the unit scores 1.6.
//   - SystemCallFilter=@system-service ~@privileged fits the JVM child too:
//     under strace, "signal-cli daemon --socket" answering a JSON-RPC call
//     and shutting down on SIGTERM used 70 distinct syscalls, all in
//     @system-service and none in @privileged. SystemCallErrorNumber=EPERM
//     turns a stray call into an error instead of a SIGSYS kill.
//   - RestrictAddressFamilies keeps AF_NETLINK: glibc's getaddrinfo (the
//     JVM's resolver) and Go's net.Interfaces use it; it does not change the
//     score.
//   - PrivateUsers is off: it would unmap the dialout and gpio groups that
//     give access to the modem tty and /dev/gpiochip*. PrivateDevices is off
//     for the same devices; DevicePolicy=closed with DeviceAllow= for
//     char-ttyUSB, char-ttyACM and char-gpiochip replaces it.
//   - signal-cli must keep its data under the StateDirectory
//     (/var/lib/relay/signal-cli, passed with --config), because
//     ProtectHome=yes hides any home directory and ProtectSystem=strict makes
//     everything else read-only.
//   - StartLimitIntervalSec=0: an unattended box keeps restarting every
//     RestartSec=5 instead of giving up after a burst.
//   - Powering off (the UPS path) goes over D-Bus to logind as user relay; the
//     package ships a polkit rule that allows exactly that action to that user.
//   - When the .deb installed the unit under /lib/systemd/system, "relayd
//     install" refuses (ErrPackagedUnit) instead of writing a shadowing copy
//     to /etc/systemd/system that would hide future package updates.
package systemd
