package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
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
	want, err := claimReleaseScript("../../../queries")
	if err != nil {
		t.Fatal(err)
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

func claimReleaseScript(queries string) (string, error) {
	claim, err := statement(queries+"/claim.sql", "ClaimRandomFree", claimArgs)
	if err != nil {
		return "", err
	}
	release, err := statement(queries+"/lease.sql", "ReleaseLease", releaseArgs)
	if err != nil {
		return "", err
	}
	return claimReleaseHeader +
		"\\set probe random(0, 999999999) / 1000000000.0\n" +
		claim + "\n\\gset\n" +
		release + ";\n", nil
}

var sqlcArg = regexp.MustCompile(`sqlc\.n?arg\('(\w+)'\)`)

// statement returns the body of the named query in file, without its
// comments and its final semicolon, with each parameter replaced by its
// value in args.
func statement(file, name string, args map[string]string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), "-- name: "+name+" ")
	if !ok {
		return "", fmt.Errorf("%s: no query %s", file, name)
	}
	var body []string
	for _, line := range strings.Split(rest, "\n")[1:] {
		if len(body) == 0 && strings.HasPrefix(line, "--") {
			continue // the query's comment
		}
		if strings.HasSuffix(line, ";") {
			body = append(body, strings.TrimSuffix(line, ";"))
			break
		}
		body = append(body, line)
	}
	var missing []string
	out := sqlcArg.ReplaceAllStringFunc(strings.Join(body, "\n"), func(m string) string {
		arg := sqlcArg.FindStringSubmatch(m)[1]
		v, ok := args[arg]
		if !ok {
			missing = append(missing, arg)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s %s: no pgbench value for parameter(s) %v: add them in claimscript_test.go", file, name, missing)
	}
	return out, nil
}
