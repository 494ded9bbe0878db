package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The reference ceiling (deploy/bench/claim_release.sql, run by pgbench) must
// run the service's own statements, not a copy that drifts from them: it is
// generated from queries/ here, and this test fails while it is stale.
//
//	go test ./deploy/bench/tokenbench -run TestClaimReleaseScript -update

var update = flag.Bool("update", false, "rewrite deploy/bench/claim_release.sql from queries/")

const claimReleasePath = "../claim_release.sql"

const claimReleaseHeader = `-- Reference ceiling of the design's hot path, for pgbench -M prepared -f.
-- One cycle = the claim statement (queries/claim.sql, ClaimRandomFree) and
-- the release statement (queries/lease.sql, ReleaseLease, with the lease id),
-- back to back, each one statement that also writes its audit row and moves a
-- counter row. Run against a database migrated by ` + "`tokend migrate`" + ` and
-- loaded with tokens: the schema is the service's own.
--
-- Generated from queries/ by deploy/bench/tokenbench/claimscript_test.go; do
-- not edit.
`

// The pgbench value of each statement parameter: random draws where the
// service draws at random, the service's defaults elsewhere, and the claimed
// token's columns (\gset) for the release.
var (
	claimArgs = map[string]string{
		"pool_id": "1", "probe": ":probe", "lease_ttl_ms": "60000", "holder": "NULL", "actor": "NULL",
		"pod": "'pgbench'",
	}
	releaseArgs = map[string]string{
		"pool_id": "1", "token": ":value", "lease_id": ":lease_id", "own_only": "false", "actor": "NULL",
		"pod": "'pgbench'",
	}
)

func TestClaimReleaseScript(t *testing.T) {
	t.Parallel()
	want, defaulted, err := claimReleaseScriptDefaults("../../../queries")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defaulted {
		t.Logf("parameter not named in claimscript_test.go, given a default by its type: %s", d)
	}
	if *update {
		if err := os.WriteFile(claimReleasePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(claimReleasePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale against queries/: regenerate it with\n\tgo test ./deploy/bench/tokenbench -run TestClaimReleaseScript -update", claimReleasePath)
	}
}

// The statements of the reference, by sqlc name. They are looked up in
// every queries/**/*.sql file, wherever they live.
const (
	claimName   = "ClaimRandomFree"
	releaseName = "ReleaseLease"
)

func claimReleaseScript(queries string) (string, error) {
	script, _, err := claimReleaseScriptDefaults(queries)
	return script, err
}

// claimReleaseScriptDefaults also returns the parameters the maps above did
// not name, which got a value by their type (see defaultArg).
func claimReleaseScriptDefaults(queries string) (string, []string, error) {
	claim, d1, err := statement(queries, claimName, claimArgs)
	if err != nil {
		return "", nil, err
	}
	release, d2, err := statement(queries, releaseName, releaseArgs)
	if err != nil {
		return "", nil, err
	}
	return claimReleaseHeader +
		"\\set probe random(0, 999999999) / 1000000000.0\n" +
		claim + "\n\\gset\n" +
		release + ";\n", append(d1, d2...), nil
}

var (
	sqlcArg = regexp.MustCompile(`sqlc\.(n?arg)\('(\w+)'\)(::\s*(\w+))?`)
	nameTag = regexp.MustCompile(`(?m)^-- name: (\w+) `)
)

// statement returns the body of the named query, found in any .sql file
// under queries, without its leading comment and its final semicolon, with
// each parameter replaced by its value in args, or else by a default for its
// kind and type (reported in defaulted).
func statement(queries, name string, args map[string]string) (body string, defaulted []string, err error) {
	files, err := sqlFiles(queries)
	if err != nil {
		return "", nil, err
	}
	var text, file string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", nil, err
		}
		for _, m := range nameTag.FindAllStringSubmatchIndex(string(b), -1) {
			if string(b[m[2]:m[3]]) != name {
				continue
			}
			if file != "" {
				return "", nil, fmt.Errorf("query %s is named in %s and in %s", name, file, f)
			}
			rest := string(b[m[1]:])
			_, rest, _ = strings.Cut(rest, "\n") // the rest of the name line (:one, :many...)
			if next := nameTag.FindStringIndex(rest); next != nil {
				rest = rest[:next[0]]
			}
			text, file = rest, f
		}
	}
	if file == "" {
		return "", nil, fmt.Errorf("no query %s in %s", name, queries)
	}
	lines := strings.Split(text, "\n")
	for len(lines) > 0 && (strings.HasPrefix(strings.TrimSpace(lines[0]), "--") || strings.TrimSpace(lines[0]) == "") {
		lines = lines[1:] // the query's comment
	}
	for len(lines) > 0 && (strings.HasPrefix(strings.TrimSpace(lines[len(lines)-1]), "--") || strings.TrimSpace(lines[len(lines)-1]) == "") {
		lines = lines[:len(lines)-1] // comments before the next query
	}
	body = strings.TrimSuffix(strings.TrimRightFunc(strings.Join(lines, "\n"), unicode.IsSpace), ";")
	seen := map[string]bool{}
	body = sqlcArg.ReplaceAllStringFunc(body, func(m string) string {
		sm := sqlcArg.FindStringSubmatch(m)
		kind, arg, cast, typ := sm[1], sm[2], sm[3], sm[4]
		v, ok := args[arg]
		if !ok {
			v = defaultArg(kind, typ)
			if !seen[arg] {
				seen[arg] = true
				defaulted = append(defaulted, fmt.Sprintf("%s.%s = %s", name, arg, v))
			}
		}
		return v + cast
	})
	return body, defaulted, nil
}

// defaultArg is the pgbench value of a parameter the maps do not name: NULL
// for a nullable one (sqlc.narg), else a neutral value of its type. The
// script run test (TestClaimReleaseScriptRuns) checks that cycles still
// happen with it.
func defaultArg(kind, typ string) string {
	if kind == "narg" {
		return "NULL"
	}
	switch strings.ToLower(typ) {
	case "bool", "boolean":
		return "false"
	case "text", "varchar":
		return "'pgbench'"
	case "float4", "float8", "real", "numeric":
		return ":probe"
	case "int", "int2", "int4", "int8", "integer", "bigint", "smallint":
		return "1"
	}
	return "NULL"
}

func sqlFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".sql") {
			files = append(files, path)
		}
		return err
	})
	slices.Sort(files)
	return files, err
}
