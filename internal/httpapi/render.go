package httpapi

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
)

// apiTime renders as RFC 3339 in UTC with microseconds, the database's
// precision.
type apiTime time.Time

const apiTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t apiTime) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(apiTimeLayout)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, apiTimeLayout)
	return append(b, '"'), nil
}

func optTime(t *time.Time) *apiTime {
	if t == nil {
		return nil
	}
	v := apiTime(*t)
	return &v
}

// writeJSON answers with v as JSON followed by a newline (friendly to curl
// and line-oriented tools), without HTML escaping.
func writeJSON(c *gin.Context, status int, v any) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(status)
	enc := json.NewEncoder(c.Writer)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.DebugContext(c.Request.Context(), "write response", "error", err)
	}
}
