package systemd

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"

	"github.com/kardianos/service"
)

//go:generate go test -run ^TestServiceConfig_Render$ -update .

// unitTemplate is the relayd unit in kardianos/service v1.3.0's mini template
// syntax ({{Key}}, {{Key | fn}}, {{range Key}}…{{end}}). v1.3.0 dropped
// text/template: an old-style {{.Key}} fails at Install and leaves an empty
// unit file behind.
//
//go:embed relayd.service.tmpl
var unitTemplate string

// unitFile is the rendered unit as shipped in the Debian package. A test keeps
// it equal to what kardianos renders from unitTemplate.
//
//go:embed relayd.service
var unitFile string

// Names and paths of the installed service.
const (
	ServiceName       = "relayd"
	ServiceUser       = "relay"
	Description       = "Relay appliance daemon (MQTT to Signal/SMS)"
	DefaultExecutable = "/usr/bin/relayd"
	DefaultConfigPath = "/etc/relay/relay.toml"
	// PackagedUnitPath is where the .deb puts the unit.
	PackagedUnitPath = "/lib/systemd/system/relayd.service"
	// GoMemLimit is the soft heap limit set in the unit (GOMEMLIMIT). 48MiB is
	// what keeps relayd at about 54 MiB RSS with 100,000 jobs queued (issue 5:
	// ≤ 64 MiB; 93-99 MiB at 96MiB) and a 1,000,000-job drain at 67 MiB (issue
	// 2: ≤ 80 MiB; 88 MiB at 64MiB). It costs durable throughput the box does
	// not need (about 17,500 instead of 25,000 Puts/s with 64 producers). The
	// JVM child (signal-cli) is not a Go program, so it ignores it.
	GoMemLimit = "48MiB"
)

// Actions are the service-control actions Control accepts.
var Actions = []string{"install", "uninstall", "start", "stop", "restart", "status"}

var (
	// ErrUnknownAction: Control was given an action not in Actions.
	ErrUnknownAction = errors.New("systemd: unknown service action")
	// ErrPackagedUnit: "install"/"uninstall" while the Debian package owns the
	// unit; use systemctl (enable --now / disable --now) instead.
	ErrPackagedUnit = errors.New("systemd: relayd.service is installed by the relay package")
	// ErrNoServiceUser: the relay system user does not exist yet.
	ErrNoServiceUser = errors.New("systemd: service user does not exist")
	// ErrNoSystemd: the host does not run systemd.
	ErrNoSystemd = errors.New("systemd: systemd is not running on this host")
)

// ActionError reports which action failed; it unwraps to the cause.
type ActionError struct {
	Action string
	Err    error
}

func (e *ActionError) Error() string { return e.Action + ": " + e.Err.Error() }
func (e *ActionError) Unwrap() error { return e.Err }

// UnitTemplate returns the kardianos/service template of the relayd unit.
func UnitTemplate() string { return unitTemplate }

// UnitFile returns the rendered unit that the Debian package installs at
// PackagedUnitPath.
func UnitFile() string { return unitFile }

// ServiceConfig is the kardianos/service configuration of relayd. The unit
// runs "executable run --config configPath" as user relay. An empty
// executable means the running binary (os.Executable), an empty configPath
// DefaultConfigPath.
func ServiceConfig(executable, configPath string) *service.Config {
	if configPath == "" {
		configPath = DefaultConfigPath
	}
	return &service.Config{
		Name:        ServiceName,
		DisplayName: ServiceName,
		Description: Description,
		UserName:    ServiceUser,
		Executable:  executable,
		Arguments:   []string{"run", "--config", configPath},
		EnvVars:     map[string]string{"GOMEMLIMIT": GoMemLimit},
		Option: service.KeyValue{
			"SystemdScript": unitTemplate,
			// Only used by kardianos's own template; ours hard-codes them.
			"Restart": "on-failure",
		},
	}
}

// Control runs one of Actions against the relayd systemd service and writes
// a one-line result to out. It is what "relayd install|uninstall|start|stop|
// restart|status" calls; install/uninstall need root.
func Control(action string, out io.Writer) error {
	return (&Controller{Out: out}).Do(action)
}

// Controller is Control with its inputs spelled out; the zero value is the
// production setup.
type Controller struct {
	Executable   string    // "" = the running binary
	ConfigPath   string    // "" = DefaultConfigPath
	PackagedUnit string    // "" = PackagedUnitPath
	Out          io.Writer // nil = discard

	// Test seams: the service system (nil = kardianos's linux-systemd),
	// user lookup (nil = os/user), and per-user units (systemctl --user,
	// ~/.config/systemd/user) so tests never touch /etc.
	system      service.System
	lookupUser  func(string) error
	userService bool
}

// noop is the kardianos Interface for control actions; relayd's "run" does
// not go through kardianos (signals and lifecycle live in cmd/relayd).
type noop struct{}

func (noop) Start(service.Service) error { return nil }
func (noop) Stop(service.Service) error  { return nil }

// Do runs action. See Control.
func (c *Controller) Do(action string) error {
	if err := c.do(action); err != nil {
		return &ActionError{Action: action, Err: err}
	}
	return nil
}

func (c *Controller) do(action string) error {
	out := c.Out
	if out == nil {
		out = io.Discard
	}
	known := false
	for _, a := range Actions {
		known = known || a == action
	}
	if !known {
		return fmt.Errorf("%w %q (want one of %v)", ErrUnknownAction, action, Actions)
	}
	sys := c.system
	if sys == nil {
		var err error
		if sys, err = systemdSystem(); err != nil {
			return err
		}
	}
	cfg := ServiceConfig(c.Executable, c.ConfigPath)
	if c.userService {
		cfg.Option["UserService"] = true
	}
	svc, err := sys.New(noop{}, cfg)
	if err != nil {
		return err
	}
	packaged := c.PackagedUnit
	if packaged == "" {
		packaged = PackagedUnitPath
	}
	switch action {
	case "install", "uninstall":
		if _, err := os.Stat(packaged); err == nil {
			return fmt.Errorf("%w at %s; use: systemctl %s relayd", ErrPackagedUnit, packaged,
				map[string]string{"install": "enable --now", "uninstall": "disable --now"}[action])
		}
	}
	switch action {
	case "install":
		lookup := c.lookupUser
		if lookup == nil {
			lookup = func(name string) error { _, err := user.Lookup(name); return err }
		}
		if err := lookup(ServiceUser); err != nil {
			return fmt.Errorf("%w: %q (%v); create it with: adduser --system --group %s && adduser %s dialout",
				ErrNoServiceUser, ServiceUser, err, ServiceUser, ServiceUser)
		}
		if err := svc.Install(); err != nil {
			removeEmptyUnit(c.userService)
			return err
		}
		fmt.Fprintf(out, "relayd: installed and enabled; start it with: relayd start\n")
		return nil
	case "uninstall":
		if err := svc.Uninstall(); err != nil {
			return err
		}
		fmt.Fprintf(out, "relayd: uninstalled\n")
		return nil
	case "status":
		st, err := svc.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled):
			fmt.Fprintf(out, "relayd: not installed\n")
			return nil
		case err != nil:
			return err
		}
		word := map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st]
		if word == "" {
			word = "unknown"
		}
		fmt.Fprintf(out, "relayd: %s\n", word)
		return nil
	default: // start, stop, restart
		if err := service.Control(svc, action); err != nil {
			return err
		}
		fmt.Fprintf(out, "relayd: %s done\n", action)
		return nil
	}
}

// systemdSystem returns kardianos's linux-systemd backend, refusing other
// init systems: the unit, sd_notify and the watchdog all assume systemd.
func systemdSystem() (service.System, error) {
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			if !s.Detect() {
				return nil, ErrNoSystemd
			}
			return s, nil
		}
	}
	return nil, ErrNoSystemd
}

// removeEmptyUnit deletes the empty unit file kardianos v1.3.0 leaves behind
// when rendering fails, which would otherwise make every later install fail
// with "Init already exists".
func removeEmptyUnit(userService bool) {
	path := filepath.Join("/etc/systemd/system", ServiceName+".service")
	if userService {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		path = filepath.Join(home, ".config/systemd/user", ServiceName+".service")
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		_ = os.Remove(path)
	}
}
