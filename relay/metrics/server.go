package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// ShutdownTimeout bounds how long Serve waits for scrapes in progress when its context ends.
const ShutdownTimeout = 5 * time.Second

var (
	// ErrServe is wrapped by Serve's error when the server stopped serving on its own (the
	// listener failed), not because its context ended.
	ErrServe = errors.New("metrics: server stopped")
)

// ListenError is Listen's error: the address (from metrics.listen) could not be bound.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	hint := ""
	if errors.Is(e.Err, syscall.EADDRINUSE) {
		hint = "; another process holds that port: set metrics.listen to a free address, or \"\" to turn metrics off"
	}
	return fmt.Sprintf("metrics: cannot listen on %s (metrics.listen): %v%s", e.Addr, e.Err, hint)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Server serves a handler on /metrics of a TCP address: Listen, then Serve until the context
// ends.
type Server struct {
	ln  net.Listener
	log *slog.Logger

	mu  sync.Mutex
	srv *http.Server // set by Serve
}

// Listen binds addr now, so that a taken port fails start-up before anything else runs; the
// caller builds what to serve and calls Serve. An empty addr means metrics are off: Listen
// returns a nil *Server, whose Serve returns at once and whose Close does nothing.
func Listen(addr string, log *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // "listen tcp 127.0.0.1:9464: bind: ..." says the address twice
		}
		return nil, &ListenError{Addr: addr, Err: err}
	}
	return &Server{ln: ln, log: orDiscard(log).With("component", "metrics")}, nil
}

// Addr is the bound address (the real port when addr asked for port 0); nil for a nil Server.
func (s *Server) Addr() net.Addr {
	if s == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve serves h on GET /metrics (and a pointer to it on GET /) until ctx ends, then shuts
// down: scrapes in progress get ShutdownTimeout to finish. It returns nil after a clean
// shutdown, and an error wrapping ErrServe when serving failed on its own. Call it once.
func (s *Server) Serve(ctx context.Context, h http.Handler) error {
	if s == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "relayd: metrics are at /metrics\n")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.log.Info("serving metrics", "url", "http://"+s.ln.Addr().String()+"/metrics")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	select {
	case err := <-errc: // Serve always returns an error; ErrServerClosed only after Shutdown
		return fmt.Errorf("%w: %v", ErrServe, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("metrics: shutdown: %w", err), srv.Close())
	}
	<-errc
	return err
}

// Close releases the listener and drops every connection at once. It is for a start-up that
// fails between Listen and Serve; after Serve returned it does nothing.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
