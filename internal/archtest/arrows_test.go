// Package archtest checks the arrows of docs/ARCHITECTURE.md: which package
// may import which. It holds only this test.
package archtest

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tokenlease/tokenlease/"

const gin = "github.com/gin-gonic/gin"

// forbidden lists, per package (a path relative to the module), the imports
// it must never have; "internal/*" stands for every package under internal/.
// A new package passes unless it breaks a rule below; docs/ARCHITECTURE.md
// says why each rule holds.
var forbidden = map[string][]string{
	"internal/events":   {gin, "internal/tokens", "internal/httpapi", "internal/longpoll", "internal/app", "db"},
	"internal/config":   {"internal/*"},
	"internal/tokens":   {gin, "internal/httpapi", "internal/app", "internal/jobs", "internal/events", "internal/longpoll", "internal/config", "db/eventsdb"},
	"internal/longpoll": {gin, "internal/httpapi", "internal/app", "db", "db/eventsdb"},
	"internal/jobs":     {gin, "internal/httpapi", "internal/app", "internal/events", "db", "db/eventsdb"},
	"internal/httpapi":  {"internal/app", "internal/jobs", "db", "db/eventsdb"},
}

// exceptions to the rules above (none today).
var allowedAnyway = map[string][]string{}

// importedOnlyBy lists packages that only the named importers may import.
var importedOnlyBy = map[string][]string{
	"db":           {"internal/tokens"},
	"db/eventsdb":  {"internal/events"},
	"internal/app": {"cmd/*", "internal/apptest"},
}

func TestImportArrows(t *testing.T) {
	imports := moduleImports(t)
	if len(imports["internal/tokens"]) == 0 {
		t.Fatal("found no imports of internal/tokens: is the module root right?")
	}
	for pkg, imps := range imports {
		for _, imp := range imps {
			for _, bad := range forbidden[pkg] {
				if matches(bad, imp) && !matchesAny(allowedAnyway[pkg], imp) {
					t.Errorf("%s imports %s: forbidden by docs/ARCHITECTURE.md", pkg, imp)
				}
			}
			if only, ok := importedOnlyBy[imp]; ok && !matchesAny(only, pkg) && pkg != imp {
				t.Errorf("%s imports %s, which only %v may import (docs/ARCHITECTURE.md)", pkg, imp, only)
			}
		}
	}
}

func matches(pattern, pkg string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(pkg, prefix+"/")
	}
	return pattern == pkg
}

func matchesAny(patterns []string, pkg string) bool {
	for _, p := range patterns {
		if matches(p, pkg) {
			return true
		}
	}
	return false
}

// moduleImports returns, per package of the module (its path relative to the
// module), what its non-test files import: module packages relative to the
// module, others by their full path.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		for _, spec := range f.Imports {
			imp, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return err
			}
			out[pkg] = append(out[pkg], strings.TrimPrefix(imp, module))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
