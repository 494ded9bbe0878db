// Package apidoc serves the API's contract: the OpenAPI document written by
// hand in openapi.yaml (GET /openapi.json) and an interactive reference built
// on Swagger UI (GET /docs), both embedded in the binary so that they work
// with no other host. Package apidoctest holds the tests' side: a transport
// that checks every answer against the document.
package apidoc

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

var (
	//go:embed openapi.yaml
	source []byte
	//go:embed index.html
	indexHTML []byte
	//go:embed ui
	uiFiles embed.FS

	// docJSON is the document as served, converted once: a YAML error is a
	// build defect that every test run reports at once.
	docJSON = mustJSON(source)
	ui      = mustSub(uiFiles, "ui")
)

func mustJSON(src []byte) []byte {
	b, err := yamlToJSON(src)
	if err != nil {
		panic("apidoc: openapi.yaml: " + err.Error())
	}
	return b
}

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// JSON returns the OpenAPI document as served at /openapi.json. Callers must
// not modify it.
func JSON() []byte { return docJSON }

// Register mounts GET /openapi.json, GET /docs and the page's assets under
// /docs/. These routes are public.
func Register(r gin.IRoutes) {
	r.GET("/openapi.json", serveDocument)
	r.GET("/docs", serveIndex)
	r.GET("/docs/*asset", serveAsset)
}

func serveDocument(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/json; charset=utf-8", docJSON)
}

func serveIndex(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", indexHTML)
}

func serveAsset(c *gin.Context) {
	name := strings.TrimPrefix(c.Param("asset"), "/")
	if !fs.ValidPath(name) || name == "." {
		notFound(c)
		return
	}
	if st, err := fs.Stat(ui, name); err != nil || st.IsDir() {
		notFound(c)
		return
	}
	http.ServeFileFS(c.Writer, c.Request, ui, name)
}

// notFound answers as the API answers an unknown route.
func notFound(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"error": gin.H{"code": "route_not_found", "message": "no such route"}})
}
