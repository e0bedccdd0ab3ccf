package gpio

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Input is a line whose logical level the appliance watches (a UPS "on battery" or "battery
// low" contact).
type Input interface {
	// Active reads the line's current logical level (kernel-debounced, active-low applied).
	Active() (bool, error)
	// Changes delivers the line's debounced level changes, oldest first. It is closed after
	// Close. A change may repeat the level the consumer already has (for example one that raced
	// with the first Active read): treat each as "the level is now X", not as a toggle.
	Changes() <-chan Change
	// Dropped counts changes that never reached Changes: dropped by the hand-off because the
	// consumer fell behind, or lost in the kernel's event buffer.
	Dropped() uint64
	// Close releases the line. Safe to call more than once.
	Close() error
}

// Output is a line the appliance drives (the status LED).
type Output interface {
	// Set drives the line to its logical level: on means active (low when active-low).
	Set(on bool) error
	// Close releases the line; the kernel then leaves it to its bias. Safe to call more than once.
	Close() error
}

// Change is one debounced level change of an Input.
type Change struct {
	// Active is the logical level after the change.
	Active bool
	// Time is the kernel's timestamp of the edge (CLOCK_MONOTONIC on Linux ≥ 5.7): good for
	// intervals between changes of one line, not a wall-clock time.
	Time time.Duration
	// Seqno is the kernel's per-line sequence number; 0 where the source has none.
	Seqno uint32
}

// Bias is the line's internal pull resistor.
type Bias int

// Bias values. BiasAsIs leaves whatever the firmware or device tree configured.
const (
	BiasAsIs Bias = iota
	BiasDisable
	BiasPullUp
	BiasPullDown
)

var biasNames = [...]string{BiasAsIs: "as_is", BiasDisable: "disable", BiasPullUp: "pull_up", BiasPullDown: "pull_down"}

func (b Bias) String() string {
	if b < 0 || int(b) >= len(biasNames) {
		return "Bias(" + strconv.Itoa(int(b)) + ")"
	}
	return biasNames[b]
}

// ParseBias reads a bias as written in relay.toml: "as_is" (or empty), "disable", "pull_up",
// "pull_down". Hyphens and case are tolerated ("Pull-Up").
func ParseBias(s string) (Bias, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	switch n {
	case "", "as_is":
		return BiasAsIs, nil
	case "disable", "disabled", "none":
		return BiasDisable, nil
	case "pull_up":
		return BiasPullUp, nil
	case "pull_down":
		return BiasPullDown, nil
	}
	return BiasAsIs, fmt.Errorf("%w: bias %q: want as_is, disable, pull_up or pull_down", ErrConfig, s)
}

// LineConfig names one line and how to request it.
type LineConfig struct {
	// Chip is the gpiochip ("gpiochip0" or "/dev/gpiochip0"). With a line name it may be empty:
	// then every chip is searched, lowest first, as gpiocdev.FindLine does.
	Chip string
	// Line is the line's name as the device tree gives it ("GPIO17") or its decimal offset on
	// Chip ("17").
	Line string
	// ActiveLow makes a low level read (or drive) as active.
	ActiveLow bool
	// Bias is the pull resistor to request.
	Bias Bias
	// Debounce is the kernel debounce period for inputs (0: none). Outputs reject it.
	Debounce time.Duration
}

// lineRef is LineConfig.Line parsed: either a name or an offset.
type lineRef struct {
	name   string
	offset int // valid when name == ""
}

// parseLineRef reads LineConfig.Line. All digits is an offset; anything else printable is a
// line name. Offsets above 4095 are refused (no gpiochip has that many lines; it is a typo).
func parseLineRef(s string) (lineRef, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return lineRef{}, fmt.Errorf("%w: empty line (want a line name like GPIO17 or an offset like 17)", ErrConfig)
	}
	if len(t) > 63 { // the kernel's GPIO_MAX_NAME_SIZE is 32; leave room, refuse garbage
		return lineRef{}, fmt.Errorf("%w: line %.20q…: name too long", ErrConfig, t)
	}
	digits := true
	for _, r := range t {
		if r < '0' || r > '9' {
			digits = false
		}
		if r < 0x21 || r == 0x7f || r > 0x7e {
			return lineRef{}, fmt.Errorf("%w: line %q: only printable ASCII without spaces", ErrConfig, s)
		}
	}
	if !digits {
		return lineRef{name: t}, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil || n > 4095 {
		return lineRef{}, fmt.Errorf("%w: line offset %q out of range 0..4095", ErrConfig, s)
	}
	return lineRef{offset: n}, nil
}

func (r lineRef) String() string {
	if r.name != "" {
		return strconv.Quote(r.name)
	}
	return "offset " + strconv.Itoa(r.offset)
}

// Sentinel errors; match with errors.Is. Open errors are *LineError wrapping one of these.
var (
	// ErrConfig: the LineConfig itself is wrong (empty line, bad bias, debounce on an output).
	ErrConfig = errors.New("gpio: bad line config")
	// ErrChipNotFound: the gpiochip does not exist or is not a GPIO character device.
	ErrChipNotFound = errors.New("gpio: chip not found")
	// ErrLineNotFound: no line of that name, or the offset is beyond the chip's lines.
	ErrLineNotFound = errors.New("gpio: line not found")
	// ErrLineBusy: another consumer (another process, a kernel driver, a hog) holds the line.
	ErrLineBusy = errors.New("gpio: line in use by another consumer")
	// ErrPermission: the process may not open the chip (group gpio / udev rule missing).
	ErrPermission = errors.New("gpio: permission denied")
	// ErrUnsupported: the kernel lacks something asked for (debounce needs uAPI v2, Linux ≥ 5.10).
	ErrUnsupported = errors.New("gpio: not supported by this kernel")
	// ErrClosed: the line was used after Close.
	ErrClosed = errors.New("gpio: line closed")
)

// LineError says which line an operation failed on and why.
type LineError struct {
	Op     string // "open input", "open output", "read", "set"
	Chip   string // the chip searched or used; empty when every chip was searched
	Line   string // the line as configured (name or offset)
	Offset int    // resolved offset, -1 when unresolved
	Holder string // with ErrLineBusy: the consumer that holds the line, if the kernel says
	Hint   string // extra help for staff, e.g. where a line of that name was found instead
	Err    error
}

func (e *LineError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gpio: %s line %q", e.Op, e.Line)
	switch {
	case e.Chip != "" && e.Offset >= 0:
		fmt.Fprintf(&b, " (%s offset %d)", e.Chip, e.Offset)
	case e.Chip != "":
		fmt.Fprintf(&b, " on %s", e.Chip)
	default:
		b.WriteString(" on any chip")
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "gpio: "))
	if e.Holder != "" {
		fmt.Fprintf(&b, " (held by %q)", e.Holder)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *LineError) Unwrap() error { return e.Err }
