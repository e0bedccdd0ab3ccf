package power

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ExecRunner runs the command as a child process and waits for it.
type ExecRunner struct{}

var _ Runner = ExecRunner{}

// Run runs argv[0] with argv[1:]. The error carries the first 200 bytes of the command's output
// (systemctl explains refusals there, e.g. a missing polkit permission).
func (ExecRunner) Run(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("power: empty command")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return fmt.Errorf("power: %s: %w: %q", strings.Join(argv, " "), err, msg)
	}
	return nil
}
