package deploy

import (
	"os"
	"os/exec"
	"testing"

	"sigs.k8s.io/yaml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertsNameOnlyExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(raw, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if bad := unknownMetrics(r.Expr); len(bad) > 0 {
				t.Errorf("alert %s names metrics the service does not export: %v", r.Alert, bad)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a severity label, a summary and a description", r.Alert)
			}
		}
	}
	// The situations issue 12 asks alerts for.
	for _, name := range []string{"TokenleasePoolNearlyExhausted", "TokenleaseWaitersPilingUp",
		"TokenleaseEventReaderLagging", "TokenleaseSweepFallingBehind", "TokenleaseServerErrors",
		"TokenleaseUnavailable", "TokenleaseDatabaseDown"} {
		if !alerts[name] {
			t.Errorf("no alert %s", name)
		}
	}
}

// promtool checks the rules' syntax and runs their unit tests
// (prometheus/alerts_test.yaml). It comes with Debian's prometheus package,
// which .ci/run installs: under CI=true a missing promtool fails the test;
// elsewhere the test is skipped and the Go checks above still hold.
func TestAlertsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing under CI=true: apt-get install prometheus (.ci/run does it)")
		}
		t.Skip("promtool is not installed (apt-get install prometheus); the Go checks of the rules ran")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
