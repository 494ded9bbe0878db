package httpapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenlease/tokenlease/internal/metrics"
)

// observe records every answered request in the metrics by its route
// template (gin's FullPath, never the raw path, which may hold a token),
// status and time. Long polls and streams count their whole wait.
func observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	metrics.ObserveRequest(c.FullPath(), c.Writer.Status(), time.Since(start))
}
