package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// mountRiverUI serves River's UI (built by the wiring, mounted there under
// /admin/river) behind the API's authentication: admins only. Only GET is
// routed: an operator reads the queue here; cancelling, retrying or pausing
// jobs (River UI's POST and PUT calls) answers 405.
func mountRiverUI(r *gin.Engine, ui http.Handler) {
	r.GET("/admin/river", func(c *gin.Context) {
		// River UI redirects its bare prefix to prefix/: serve the page at
		// once, as the API documents.
		req := *c.Request
		u := *req.URL
		u.Path, u.RawPath = u.Path+"/", ""
		req.URL = &u
		ui.ServeHTTP(c.Writer, &req)
	})
	r.GET("/admin/river/*path", func(c *gin.Context) { ui.ServeHTTP(c.Writer, c.Request) })
}
