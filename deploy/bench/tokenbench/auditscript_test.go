package main

import (
	"os"
	"testing"
)

// deploy/bench/audit_cycle.sql is the audit-volume probe of
// deploy/bench/auditbytes.sh: one assign -> keep-alive (with the lease id) ->
// unblock cycle of the service's own single-token statements, generated from
// queries/ like claim_release.sql, and failing here while it is stale:
//
//	go test ./deploy/bench/tokenbench -run TestAuditCycleScript -update
//
// Holder, actor and pod are set to values of a typical length, so that the
// bytes measured per cycle are those of a real deployment's rows.

const auditCyclePath = "../audit_cycle.sql"

const auditCycleHeader = `-- Audit-volume probe, for pgbench -M prepared -f (deploy/bench/auditbytes.sh).
-- One cycle = assign (queries/claim.sql, ClaimRandomFree), keep-alive with
-- the lease id (queries/lease.sql, KeepAlive) and unblock (ReleaseLease),
-- each one statement that writes its audit row. Holder, actor and pod have
-- typical lengths.
--
-- Generated from queries/ by deploy/bench/tokenbench/auditscript_test.go; do
-- not edit.
`

var (
	auditPod     = "'tokend-7c9f5d8b6-x2k4q-1'"
	auditClaim   = map[string]string{"pool_id": "1", "probe": ":probe", "lease_ttl_ms": "60000", "holder": "'ci-runner-0042'", "actor": "'ci-pipeline'", "pod": auditPod}
	auditKeep    = map[string]string{"pool_id": "1", "token": ":value", "lease_id": ":lease_id", "own_only": "true", "actor": "'ci-pipeline'", "pod": auditPod, "keepalive_ttl_ms": "86400000"}
	auditRelease = map[string]string{"pool_id": "1", "token": ":value", "lease_id": ":lease_id", "own_only": "true", "actor": "'ci-pipeline'", "pod": auditPod}
)

func TestAuditCycleScript(t *testing.T) {
	q := "../../../queries"
	claim, _, err := statement(q, claimName, auditClaim)
	if err != nil {
		t.Fatal(err)
	}
	keep, _, err := statement(q, "KeepAlive", auditKeep)
	if err != nil {
		t.Fatal(err)
	}
	release, _, err := statement(q, releaseName, auditRelease)
	if err != nil {
		t.Fatal(err)
	}
	want := auditCycleHeader +
		"\\set probe random(0, 999999999) / 1000000000.0\n" +
		claim + "\n\\gset\n" +
		keep + ";\n" +
		release + ";\n"
	if *update {
		if err := os.WriteFile(auditCyclePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(auditCyclePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale against queries/: regenerate it with\n\tgo test ./deploy/bench/tokenbench -run TestAuditCycleScript -update", auditCyclePath)
	}
}
