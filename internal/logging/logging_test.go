package logging_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokenlease/tokenlease/internal/logging"
)

func TestLinesOfARequestCarryItsID(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{logging.FormatText, "request_id=req-42"},
		{logging.FormatJSON, `"request_id":"req-42"`},
	} {
		var buf bytes.Buffer
		log := logging.New(&buf, c.format, slog.LevelInfo).With("component", "test")
		ctx := logging.WithRequestID(context.Background(), "req-42")
		log.InfoContext(ctx, "inside")
		log.WithGroup("g").InfoContext(ctx, "grouped", "k", "v")
		log.Info("outside")
		log.DebugContext(ctx, "below the level")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines, want 3:\n%s", c.format, len(lines), buf.String())
		}
		if !strings.Contains(lines[0], c.want) || !strings.Contains(lines[1], "request_id") || strings.Contains(lines[2], "request_id") {
			t.Errorf("%s: want %s on the request's lines only:\n%s", c.format, c.want, buf.String())
		}
		if c.format == logging.FormatJSON && !strings.HasPrefix(lines[0], "{") {
			t.Errorf("json: %s", lines[0])
		}
	}
}
