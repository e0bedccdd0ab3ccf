package signalbridge

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestMaskNumbers(t *testing.T) {
	if got := maskNumbers("User +4915112345678 is not registered."); got != "User +49*********78 is not registered." {
		t.Errorf("maskNumbers = %q", got)
	}
}

func TestLineLimiter_Line(t *testing.T) {
	type step struct {
		advance time.Duration
		line    string
	}
	tests := []struct {
		name  string
		steps []step
		want  []string // logged messages, in order
	}{
		{"distinct lines pass", []step{{0, "INFO a"}, {0, "INFO b"}}, []string{"INFO a", "INFO b"}},
		{"repeats folded", []step{{0, "ERROR x"}, {0, "ERROR x"}, {0, "ERROR x"}, {0, "INFO y"}},
			[]string{"ERROR x", "previous signal-cli line repeated 2 times", "INFO y"}},
		{"rate limited per window", []step{{0, "a"}, {0, "b"}, {0, "c"}, {0, "d"}, {time.Minute, "e"}},
			[]string{"a", "b", "c", "signal-cli stderr rate-limited: 1 lines not logged", "e"}},
		{"endless repeat summarized per window", []step{{0, "E"}, {0, "E"}, {30 * time.Second, "E"}, {31 * time.Second, "E"}},
			[]string{"E", "previous signal-cli line repeated 2 times", "previous signal-cli line repeated 1 times"}},
		{"numbers masked", []step{{0, "WARN Failed to read data for +4915112345678: EOF"}},
			[]string{"WARN Failed to read data for +49*********78: EOF"}},
		{"close flushes", []step{{0, "E"}, {0, "E"}}, []string{"E", "previous signal-cli line repeated 1 times"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key != slog.MessageKey {
						return slog.Attr{}
					}
					return a
				}}))
			now := time.Unix(1000, 0)
			l := newLineLimiter(log, func() time.Time { return now }, 3, time.Minute)
			for _, s := range tt.steps {
				now = now.Add(s.advance)
				l.Line(s.line)
			}
			l.Close()
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				got = append(got, strings.Trim(strings.TrimPrefix(line, "msg="), `"`))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestLineLimiter_foldsNumbers(t *testing.T) {
	var buf bytes.Buffer
	l := newLineLimiter(slog.New(slog.NewTextHandler(&buf, nil)), time.Now, 100, time.Minute)
	l.Line("12:00:01.001 WARN x")
	l.Line("12:00:01.002 WARN x")
	l.Line("12:00:01.003 WARN y")
	l.Close()
	if got := strings.Count(buf.String(), "\n"); got != 3 || !strings.Contains(buf.String(), "repeated 1 times") {
		t.Fatalf("got:\n%s", buf.String())
	}
}
