package deploy

import (
	"encoding/json"
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's panels
}

func TestDashboardQueriesNameOnlyExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("grafana/tokenlease.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("tokenlease.json: %v", err)
	}
	queries := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				queries++
				if tg.Expr == "" {
					t.Errorf("panel %q has an empty query", p.Title)
				}
				if bad := unknownMetrics(tg.Expr); len(bad) > 0 {
					t.Errorf("panel %q names metrics the service does not export: %v", p.Title, bad)
				}
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if bad := unknownMetrics(v.Definition); len(bad) > 0 {
			t.Errorf("variable %s names metrics the service does not export: %v", v.Name, bad)
		}
	}
	if queries < 10 {
		t.Errorf("%d queries: the dashboard lost its panels", queries)
	}
}

// The provisioning files load the dashboard from where compose mounts it
// and name the datasource the dashboard defaults to.
func TestGrafanaProvisioningMatchesCompose(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("datasources %+v: want one Prometheus with uid prometheus (the dashboard's default)", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/tokenlease.yaml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Options.Path != "/etc/grafana/dashboards" {
		t.Errorf("dashboard providers %+v: want one reading /etc/grafana/dashboards", dp.Providers)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
