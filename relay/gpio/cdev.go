package gpio

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"
)

// DefaultConsumer is the label the kernel shows for lines relay holds (gpioinfo, and the
// "held by" of other programs' errors).
const DefaultConsumer = "relay"

// Options are shared by OpenInput and OpenOutput.
type Options struct {
	Consumer  string       // kernel consumer label; DefaultConsumer when empty
	QueueSize int          // inputs: changes held for a slow consumer; DefaultQueueSize when < 1
	Logger    *slog.Logger // nil: discard
}

func (o Options) consumer() string {
	if o.Consumer == "" {
		return DefaultConsumer
	}
	return o.Consumer
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger.With("component", "gpio")
}

// InputLine is a requested input line with both-edge detection. It implements Input.
type InputLine struct {
	line   *gpiocdev.Line
	q      *Queue
	chip   string
	offset int
	name   string

	lastSeq uint32 // touched only by go-gpiocdev's watcher goroutine

	mu     sync.Mutex
	closed bool
}

var _ Input = (*InputLine)(nil)

// OpenInput requests cfg as an input reporting both edges through Changes.
func OpenInput(cfg LineConfig, o Options) (*InputLine, error) {
	const op = "open input"
	chip, offset, err := resolve(op, cfg)
	if err != nil {
		return nil, err
	}
	in := &InputLine{q: NewQueue(o.QueueSize), chip: chip, offset: offset, name: cfg.Line}
	opts := []gpiocdev.LineReqOption{
		gpiocdev.WithConsumer(o.consumer()),
		gpiocdev.WithBothEdges,
		gpiocdev.WithEventHandler(in.handle),
	}
	opts = append(opts, common(cfg)...)
	if cfg.Debounce < 0 {
		return nil, &LineError{Op: op, Chip: chip, Line: cfg.Line, Offset: offset, Err: fmt.Errorf("%w: negative debounce %v", ErrConfig, cfg.Debounce)}
	}
	if cfg.Debounce > 0 {
		opts = append(opts, gpiocdev.WithDebounce(cfg.Debounce))
	}
	l, err := request(op, cfg, chip, offset, opts)
	if err != nil {
		return nil, err
	}
	in.line = l
	o.logger().Info("input line requested", "chip", chip, "offset", offset, "line", cfg.Line,
		"active_low", cfg.ActiveLow, "bias", cfg.Bias.String(), "debounce", cfg.Debounce)
	return in, nil
}

// handle runs on go-gpiocdev's watcher goroutine, serially. It must only hand off: a slow
// handler overflows the kernel's event buffer, and Close from here would deadlock.
func (in *InputLine) handle(e gpiocdev.LineEvent) {
	// The kernel numbers a request's events from 1 and, when its buffer overflows, discards
	// the oldest: a gap (including before the first event we see) is what it lost.
	if e.LineSeqno != 0 {
		if e.LineSeqno > in.lastSeq+1 {
			in.q.Lost(uint64(e.LineSeqno - in.lastSeq - 1))
		}
		in.lastSeq = e.LineSeqno
	}
	in.q.Offer(Change{Active: e.Type == gpiocdev.LineEventRisingEdge, Time: e.Timestamp, Seqno: e.LineSeqno})
}

// Active reads the line's current logical level.
func (in *InputLine) Active() (bool, error) {
	v, err := in.line.Value()
	if err != nil {
		return false, in.opErr("read", err)
	}
	return v == 1, nil
}

// Changes implements Input.
func (in *InputLine) Changes() <-chan Change { return in.q.C() }

// Dropped implements Input.
func (in *InputLine) Dropped() uint64 { return in.q.Dropped() }

// Close releases the line and then closes Changes. It must not be called from the event path.
func (in *InputLine) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	in.closed = true
	err := in.line.Close() // waits for the watcher goroutine: no Offer after this
	in.q.Close()
	if err != nil && !errors.Is(err, gpiocdev.ErrClosed) {
		return in.opErr("close", err)
	}
	return nil
}

func (in *InputLine) opErr(op string, err error) error {
	if errors.Is(err, gpiocdev.ErrClosed) {
		err = ErrClosed
	}
	return &LineError{Op: op, Chip: in.chip, Line: in.name, Offset: in.offset, Err: err}
}

// OutputLine is a requested output line. It implements Output.
type OutputLine struct {
	line   *gpiocdev.Line
	chip   string
	offset int
	name   string

	mu     sync.Mutex
	closed bool
}

var _ Output = (*OutputLine)(nil)

// OpenOutput requests cfg as an output, driven to initial at once.
func OpenOutput(cfg LineConfig, initial bool, o Options) (*OutputLine, error) {
	const op = "open output"
	chip, offset, err := resolve(op, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Debounce != 0 {
		return nil, &LineError{Op: op, Chip: chip, Line: cfg.Line, Offset: offset, Err: fmt.Errorf("%w: debounce on an output", ErrConfig)}
	}
	opts := []gpiocdev.LineReqOption{gpiocdev.WithConsumer(o.consumer()), gpiocdev.AsOutput(level(initial))}
	opts = append(opts, common(cfg)...)
	l, err := request(op, cfg, chip, offset, opts)
	if err != nil {
		return nil, err
	}
	o.logger().Info("output line requested", "chip", chip, "offset", offset, "line", cfg.Line,
		"active_low", cfg.ActiveLow)
	return &OutputLine{line: l, chip: chip, offset: offset, name: cfg.Line}, nil
}

// Set implements Output.
func (out *OutputLine) Set(on bool) error {
	if err := out.line.SetValue(level(on)); err != nil {
		if errors.Is(err, gpiocdev.ErrClosed) {
			err = ErrClosed
		}
		return &LineError{Op: "set", Chip: out.chip, Line: out.name, Offset: out.offset, Err: err}
	}
	return nil
}

// Close implements Output.
func (out *OutputLine) Close() error {
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.closed {
		return nil
	}
	out.closed = true
	if err := out.line.Close(); err != nil && !errors.Is(err, gpiocdev.ErrClosed) {
		return &LineError{Op: "close", Chip: out.chip, Line: out.name, Offset: out.offset, Err: err}
	}
	return nil
}

func level(on bool) int {
	if on {
		return 1
	}
	return 0
}

func common(cfg LineConfig) []gpiocdev.LineReqOption {
	var opts []gpiocdev.LineReqOption
	if cfg.ActiveLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	switch cfg.Bias {
	case BiasDisable:
		opts = append(opts, gpiocdev.WithBiasDisabled)
	case BiasPullUp:
		opts = append(opts, gpiocdev.WithPullUp)
	case BiasPullDown:
		opts = append(opts, gpiocdev.WithPullDown)
	}
	return opts
}

// resolve turns cfg's chip and line into a chip name and offset, checking both exist.
func resolve(op string, cfg LineConfig) (string, int, error) {
	ref, err := parseLineRef(cfg.Line)
	if err != nil {
		return "", -1, &LineError{Op: op, Chip: cfg.Chip, Line: cfg.Line, Offset: -1, Err: err}
	}
	if cfg.Bias < BiasAsIs || cfg.Bias > BiasPullDown {
		return "", -1, &LineError{Op: op, Chip: cfg.Chip, Line: cfg.Line, Offset: -1, Err: fmt.Errorf("%w: bias %v", ErrConfig, cfg.Bias)}
	}
	lerr := func(chip string, offset int, err error, hint string) error {
		return &LineError{Op: op, Chip: chip, Line: cfg.Line, Offset: offset, Err: err, Hint: hint}
	}
	if cfg.Chip == "" {
		if ref.name == "" {
			return "", -1, lerr("", -1, fmt.Errorf("%w: a line offset needs a chip", ErrConfig), "")
		}
		chip, offset, err := gpiocdev.FindLine(ref.name)
		if err != nil {
			return "", -1, lerr("", -1, ErrLineNotFound, chipsHint())
		}
		return chip, offset, nil
	}
	c, err := gpiocdev.NewChip(cfg.Chip)
	if err != nil {
		return "", -1, lerr(cfg.Chip, -1, chipErr(err), chipsHint())
	}
	defer c.Close()
	chip := c.Name
	if ref.name == "" {
		if ref.offset >= c.Lines() {
			return "", -1, lerr(chip, ref.offset, ErrLineNotFound, fmt.Sprintf("%s has %d lines (offsets 0..%d)", chip, c.Lines(), c.Lines()-1))
		}
		return chip, ref.offset, nil
	}
	offset, err := c.FindLine(ref.name)
	if err != nil {
		hint := ""
		if other, off, err := gpiocdev.FindLine(ref.name); err == nil {
			// Typical on a Raspberry Pi 5, where the header is not on gpiochip0 on every kernel.
			hint = fmt.Sprintf("a line of that name is %s offset %d: set the chip to %q", other, off, other)
		}
		return "", -1, lerr(chip, -1, ErrLineNotFound, hint)
	}
	return chip, offset, nil
}

// request opens the chip and requests the line, translating the kernel's answers.
func request(op string, cfg LineConfig, chip string, offset int, opts []gpiocdev.LineReqOption) (*gpiocdev.Line, error) {
	lerr := func(err error, holder string) error {
		return &LineError{Op: op, Chip: chip, Line: cfg.Line, Offset: offset, Err: err, Holder: holder}
	}
	c, err := gpiocdev.NewChip(chip)
	if err != nil {
		return nil, lerr(chipErr(err), "")
	}
	defer c.Close()
	l, err := c.RequestLine(offset, opts...)
	if err == nil {
		return l, nil
	}
	var uapiErr gpiocdev.ErrUapiIncompatibility
	switch {
	case errors.Is(err, unix.EBUSY):
		holder := ""
		if info, ierr := c.LineInfo(offset); ierr == nil {
			holder = info.Consumer
		}
		return nil, lerr(fmt.Errorf("%w: %w", ErrLineBusy, err), holder)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, gpiocdev.ErrPermissionDenied):
		return nil, lerr(fmt.Errorf("%w: %w", ErrPermission, err), "")
	case errors.Is(err, gpiocdev.ErrInvalidOffset):
		return nil, lerr(fmt.Errorf("%w: %w", ErrLineNotFound, err), "")
	case errors.As(err, &uapiErr):
		return nil, lerr(fmt.Errorf("%w: %w", ErrUnsupported, err), "")
	}
	return nil, lerr(err, "")
}

func chipErr(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, gpiocdev.ErrNotCharacterDevice):
		return fmt.Errorf("%w: %w", ErrChipNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

func chipsHint() string {
	chips := gpiocdev.Chips()
	if len(chips) == 0 {
		return "no gpiochip devices in /dev (is this the right board, and may the relay user open them?)"
	}
	return "chips present: " + strings.Join(chips, ", ")
}
