package signalbridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/shopkit/relay/relay/backoff"
	"github.com/shopkit/relay/relay/redact"
)

// State is the health state a Supervisor reports.
type State string

const (
	StateStarting        State = "starting"         // child starting / waiting for readiness
	StateUp              State = "up"               // ready, account registered, subscribed
	StateDown            State = "down"             // not usable; Reason says why; restart pending
	StateUnregistered    State = "unregistered"     // daemon up, account not in listAccounts (register/verify or link)
	StateCaptchaRequired State = "captcha_required" // up, but a send needs a solved captcha (SubmitRateLimitChallenge)
)

// Health is a snapshot of the Supervisor's view of signal-cli.
type Health struct {
	State  State
	Reason string    // why down (or what is awaited); empty when up
	Since  time.Time // when State was entered
	// LastOK is when signal-cli last answered any call (the zero time if never).
	LastOK time.Time
	// Restarts counts restarts (or reconnects to an external daemon) since Run began.
	Restarts int
	// PID of the child process (0 for an external daemon or when none is running).
	PID int
	// ChallengeToken is the token of the pending captcha challenge (StateCaptchaRequired).
	ChallengeToken string
	// Incoming describes the queue of incoming events waiting for OnEvent; Incoming.Paused
	// means receiving is paused (the handler is behind; messages wait at signal-cli).
	Incoming EventStats
}

// Clock is the time source for backoff waits, probe scheduling and Health times.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SupervisorConfig configures a Supervisor. Either Binary (start signal-cli as a child) or
// Address (connect to a daemon managed elsewhere) must be set.
type SupervisorConfig struct {
	// Binary is the signal-cli launcher. It is started as
	//   Binary --config ConfigDir daemon --socket SocketPath --receive-mode=manual --no-receive-stdout [ExtraArgs…]
	Binary     string
	ConfigDir  string
	SocketPath string
	// JavaOptions is passed as JAVA_OPTS (honoured by signal-cli's launcher), e.g. "-Xmx256m".
	JavaOptions string
	ExtraArgs   []string
	Env         []string // extra environment (KEY=VALUE) for the child

	// Network/Address of an externally managed daemon ("unix" + socket path, or "tcp" +
	// host:port). With Binary set, Address defaults to SocketPath.
	Network, Address string

	// Account is the relay's own number. Readiness requires listAccounts to contain it
	// (otherwise StateUnregistered); incoming messages are subscribed for it. "" = any.
	Account string

	// OnEvent receives incoming events (see ClientOptions.OnEvent), in order, from one
	// goroutine of the Supervisor, across restarts of signal-cli. Run returns only after every
	// event received has been handed to it.
	OnEvent func(Event)
	// EventQueueHigh / EventQueueLow bound the events waiting for OnEvent: receiving pauses
	// at the high mark and resumes at the low one, also across restarts (a new connection
	// does not subscribe while the queue is still full). See ClientOptions.EventQueueHigh.
	EventQueueHigh, EventQueueLow int
	Logger                        *slog.Logger

	ReadyTimeout  time.Duration // start → ready (default 90 s: a JVM on a Pi is slow)
	ProbeInterval time.Duration // between liveness probes (default 30 s)
	ProbeTimeout  time.Duration // a probe slower than this counts as hung (default 10 s)
	StopTimeout   time.Duration // SIGTERM → SIGKILL (default 10 s)
	CallTimeout   time.Duration // bound for API calls whose context has no deadline (default 2 min)
	BackoffMin    time.Duration // first restart delay (default 1 s)
	BackoffMax    time.Duration // cap (default 5 min)
	// StableAfter: a run that stayed ready this long resets the backoff (default 2 min).
	StableAfter time.Duration
	// StderrLinesPerMinute caps logged child stderr lines (default 60).
	StderrLinesPerMinute int
	MaxLineBytes         int

	Clock Clock          // nil: real time
	Rand  func() float64 // jitter source in [0,1); nil: math/rand/v2
}

// Supervisor keeps one signal-cli daemon (child or external) usable and exposes its API.
type Supervisor struct {
	cfg   SupervisorConfig
	log   *slog.Logger
	clock Clock

	mu       sync.Mutex
	health   Health
	client   *Client
	captcha  string // pending challenge token
	running  bool
	accounts bool // Account found in listAccounts

	events *eventQueue // incoming events, shared by every connection; nil without OnEvent
}

var _ API = (*Supervisor)(nil)

// NewSupervisor validates cfg and fills defaults.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	if cfg.Binary == "" && cfg.Address == "" {
		return nil, errors.New("signalbridge: supervisor needs Binary or Address")
	}
	if cfg.Binary != "" {
		if cfg.SocketPath == "" || cfg.ConfigDir == "" {
			return nil, errors.New("signalbridge: supervisor with Binary needs SocketPath and ConfigDir")
		}
		if cfg.Address == "" {
			cfg.Network, cfg.Address = "unix", cfg.SocketPath
		}
	}
	if cfg.Network == "" {
		cfg.Network = "unix"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ReadyTimeout, 90*time.Second)
	def(&cfg.ProbeInterval, 30*time.Second)
	def(&cfg.ProbeTimeout, 10*time.Second)
	def(&cfg.StopTimeout, 10*time.Second)
	def(&cfg.CallTimeout, 2*time.Minute)
	def(&cfg.BackoffMin, time.Second)
	def(&cfg.BackoffMax, 5*time.Minute)
	def(&cfg.StableAfter, 2*time.Minute)
	if cfg.StderrLinesPerMinute <= 0 {
		cfg.StderrLinesPerMinute = 60
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{cfg: cfg, log: log.With("component", "signalbridge"), clock: cfg.Clock}
	s.health = Health{State: StateStarting, Since: cfg.Clock.Now()}
	if cfg.OnEvent != nil {
		s.events = newEventQueue(cfg.OnEvent, cfg.EventQueueHigh, cfg.EventQueueLow)
	}
	return s, nil
}

// Health returns the current health snapshot. Safe for concurrent use.
func (s *Supervisor) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health
	if h.State == StateUp && s.captcha != "" {
		h.State, h.Reason, h.ChallengeToken = StateCaptchaRequired, "send needs a solved captcha", s.captcha
	}
	if s.events != nil {
		h.Incoming = s.events.Stats()
	}
	return h
}

// Client returns the current connection, or ErrNotReady. It may be closed at any time by a
// restart; prefer the API methods on the Supervisor itself.
func (s *Supervisor) Client() (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotReady, s.health.Reason)
	}
	return s.client, nil
}

func (s *Supervisor) setState(st State, reason string) {
	s.mu.Lock()
	changed := s.health.State != st || s.health.Reason != reason
	if changed {
		s.health.State, s.health.Reason, s.health.Since = st, reason, s.clock.Now()
	}
	s.mu.Unlock()
	if changed { // log on change only: a flapping daemon does not flood the journal
		lvl := slog.LevelInfo
		if st == StateDown || st == StateUnregistered {
			lvl = slog.LevelWarn
		}
		s.log.Log(context.Background(), lvl, "signal-cli state", "state", string(st), "reason", maskNumbers(reason))
	}
}

// Run supervises until ctx ends, then stops the child (SIGTERM, SIGKILL after StopTimeout) and
// returns nil. Run may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("signalbridge: Supervisor.Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	if q := s.events; q != nil {
		go q.run()
		defer func() { // every connection is closed by now: hand over what is left
			q.close()
			<-q.done
		}()
	}

	attempt := 0
	for {
		readyFor, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			s.setState(StateDown, "stopped")
			return nil
		}
		if readyFor >= s.cfg.StableAfter {
			attempt = 0
		}
		// Exponential with "equal jitter" so restarts of many boxes after a shared outage spread out.
		d := backoff.Delay(attempt, s.cfg.BackoffMin, s.cfg.BackoffMax, s.cfg.Rand())
		attempt++
		s.setState(StateDown, err.Error())
		s.log.Warn("signal-cli restart scheduled", "in", d.Round(time.Millisecond).String(), "attempt", attempt)
		select {
		case <-ctx.Done():
			s.setState(StateDown, "stopped")
			return nil
		case <-s.clock.After(d):
		}
		s.mu.Lock()
		s.health.Restarts++
		s.mu.Unlock()
	}
}

// runOnce starts (or connects), waits for readiness and serves until something fails. It
// returns how long the daemon was ready and why it ended.
func (s *Supervisor) runOnce(ctx context.Context) (time.Duration, error) {
	s.setState(StateStarting, "")
	var ch *child
	if s.cfg.Binary != "" {
		if err := removeStaleSocket(s.cfg.SocketPath); err != nil {
			return 0, err
		}
		var err error
		if ch, err = s.startChild(); err != nil {
			return 0, err
		}
		defer ch.stop(s.cfg.StopTimeout, s.log)
		s.mu.Lock()
		s.health.PID = ch.cmd.Process.Pid
		s.mu.Unlock()
		defer func() { s.mu.Lock(); s.health.PID = 0; s.mu.Unlock() }()
	}
	c, registered, err := s.connectReady(ctx, ch)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.client = nil
		s.mu.Unlock()
	}()

	subscribed := false // receiving is wanted (it may be paused while the queue is full)
	subscribe := func() error {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
		defer cancel()
		now, err := c.startReceiving(pctx, s.cfg.Account)
		if err != nil {
			return fmt.Errorf("subscribeReceive: %w", err)
		}
		if !now {
			s.log.Info("incoming stays paused on the new connection until the event queue drains",
				"queued", s.events.Stats().Queued)
		}
		subscribed = true
		s.setState(StateUp, "")
		return nil
	}
	if registered {
		if err := subscribe(); err != nil {
			return 0, err
		}
	} else {
		s.setState(StateUnregistered, "account "+s.cfg.Account+" is not registered in signal-cli")
	}
	readySince := s.clock.Now()
	readyFor := func() time.Duration { return s.clock.Now().Sub(readySince) }

	var exited <-chan struct{}
	if ch != nil {
		exited = ch.exited
	}
	for {
		select {
		case <-ctx.Done():
			return readyFor(), ctx.Err()
		case <-exited:
			return readyFor(), fmt.Errorf("signal-cli exited: %v", ch.state)
		case <-c.Done():
			if ch != nil { // usually the child died: report that rather than the EOF
				t := time.NewTimer(time.Second)
				select {
				case <-exited:
					t.Stop()
					return readyFor(), fmt.Errorf("signal-cli exited: %v", ch.state)
				case <-t.C:
				}
			}
			return readyFor(), c.Err()
		case <-s.clock.After(s.cfg.ProbeInterval):
			ok, err := s.probe(ctx, c)
			if err != nil {
				// A hung JVM: the deferred stop kills it.
				return readyFor(), fmt.Errorf("probe failed: %w", err)
			}
			if ok && !subscribed {
				if err := subscribe(); err != nil {
					return readyFor(), err
				}
			}
			if !ok && subscribed {
				return readyFor(), fmt.Errorf("account %s no longer listed by signal-cli", s.cfg.Account)
			}
		}
	}
}

// probe is one cheap call with a short deadline: listAccounts (which also tells whether the
// account is registered) or version when no account is configured.
func (s *Supervisor) probe(ctx context.Context, c *Client) (registered bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	if s.cfg.Account == "" {
		_, err := c.Version(pctx)
		return err == nil, err
	}
	accs, err := c.ListAccounts(pctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(accs, s.cfg.Account), nil
}

// connectReady polls connect until the daemon accepts, then checks version and listAccounts,
// all within ReadyTimeout (reference pitfall 7.13: the socket existing is not readiness).
func (s *Supervisor) connectReady(ctx context.Context, ch *child) (*Client, bool, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyTimeout)
	defer cancel()
	opts := ClientOptions{Logger: s.log, MaxLineBytes: s.cfg.MaxLineBytes, CallTimeout: s.cfg.CallTimeout,
		onReply: s.onReply, onSend: s.onSend, onChallengeOK: s.onChallengeOK, events: s.events}
	wait := 20 * time.Millisecond
	var exited <-chan struct{}
	if ch != nil {
		exited = ch.exited
	}
	var c *Client
	for c == nil {
		var err error
		c, err = Dial(rctx, s.cfg.Network, s.cfg.Address, opts)
		if err == nil {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-exited:
			t.Stop()
			return nil, false, fmt.Errorf("signal-cli exited during start-up: %v", ch.state)
		case <-rctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("signal-cli not ready within %v: %v", s.cfg.ReadyTimeout, err)
		case <-t.C:
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
	fail := func(what string, err error) (*Client, bool, error) {
		c.Close()
		if rctx.Err() != nil && ctx.Err() == nil {
			return nil, false, fmt.Errorf("signal-cli not ready within %v (%s): %w", s.cfg.ReadyTimeout, what, err)
		}
		return nil, false, fmt.Errorf("signal-cli readiness (%s): %w", what, err)
	}
	v, err := c.Version(rctx)
	if err != nil {
		return fail("version", err)
	}
	registered := true
	if s.cfg.Account != "" {
		accs, err := c.ListAccounts(rctx)
		if err != nil {
			return fail("listAccounts", err)
		}
		registered = slices.Contains(accs, s.cfg.Account)
	}
	s.log.Info("signal-cli ready", "version", v, "registered", registered)
	return c, registered, nil
}

func (s *Supervisor) onReply(string, error) {
	now := s.clock.Now()
	s.mu.Lock()
	s.health.LastOK = now
	s.mu.Unlock()
}

func (s *Supervisor) onSend(rs []SendResult) {
	for _, r := range rs {
		if r.Outcome == OutcomeCaptchaRequired {
			s.mu.Lock()
			first := s.captcha == ""
			s.captcha = r.ChallengeToken
			s.mu.Unlock()
			if first {
				s.log.Warn("signal-cli: sending needs a solved captcha", "recipient", redact.Number(r.Recipient))
			}
			return
		}
	}
}

func (s *Supervisor) onChallengeOK() {
	s.mu.Lock()
	s.captcha = ""
	s.mu.Unlock()
}

// removeStaleSocket deletes a socket file nobody listens on (left by a SIGKILLed daemon, which
// would otherwise fail with "Address already in use"). A live socket or a non-socket file is an
// error: we do not steal another daemon's socket.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("socket %s is in use by another signal-cli", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState // valid after exited is closed
	logged chan struct{}    // stderr drained
}

func (s *Supervisor) startChild() (*child, error) {
	args := []string{"--config", s.cfg.ConfigDir, "daemon", "--socket", s.cfg.SocketPath,
		"--receive-mode=manual", "--no-receive-stdout"}
	args = append(args, s.cfg.ExtraArgs...)
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), s.cfg.Env...)
	if s.cfg.JavaOptions != "" {
		cmd.Env = append(cmd.Env, "JAVA_OPTS="+s.cfg.JavaOptions)
	}
	// Own process group: signals reach java even if the launcher did not exec it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start signal-cli: %w", err)
	}
	ch := &child{cmd: cmd, exited: make(chan struct{}), logged: make(chan struct{})}
	lim := newLineLimiter(s.log.With("stream", "signal-cli"), s.clock.Now, s.cfg.StderrLinesPerMinute, time.Minute)
	go func() {
		defer close(ch.logged)
		defer lim.Close()
		br := bufio.NewReaderSize(stderr, 16<<10)
		var buf []byte
		for {
			line, err := readLine(br, 16<<10, &buf)
			if errors.Is(err, errLineTooLong) {
				continue
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
					s.log.Debug("signal-cli stderr", "err", err)
				}
				return
			}
			lim.Line(string(line))
		}
	}()
	go func() {
		<-ch.logged // Wait closes the pipe; read it to the end first
		_ = cmd.Wait()
		ch.state = cmd.ProcessState
		close(ch.exited)
	}()
	s.log.Info("signal-cli started", "pid", cmd.Process.Pid)
	return ch, nil
}

// stop sends SIGTERM to the child's group, then SIGKILL after timeout, and waits for it.
func (ch *child) stop(timeout time.Duration, log *slog.Logger) {
	select {
	case <-ch.exited:
		return
	default:
	}
	pgid := ch.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch.exited:
		return
	case <-t.C:
	}
	log.Warn("signal-cli ignored SIGTERM; killing", "pid", pgid, "after", timeout.String())
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-ch.exited
}
