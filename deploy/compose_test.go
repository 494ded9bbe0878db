package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yaml as `docker compose` would, with the
// given profiles and only env for interpolation (not the process's
// environment, not a .env file), offline.
func loadCompose(t *testing.T, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yaml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

var composeEnv = []string{"BOOTSTRAP_ADMIN_KEY=tl_example"}

func TestComposeServicesAndProfile(t *testing.T) {
	plain, err := loadCompose(t, composeEnv)
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	if got := plain.ServiceNames(); !slices.Equal(sorted(got), []string{"postgres", "tokend"}) {
		t.Errorf("services without a profile: %v, want postgres and tokend", got)
	}
	p, err := loadCompose(t, composeEnv, "observability")
	if err != nil {
		t.Fatalf("docker-compose.yaml --profile observability: %v", err)
	}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), []string{"grafana", "postgres", "prometheus", "tokend"}) {
		t.Errorf("services with the observability profile: %v", got)
	}
	for _, s := range p.Services {
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q, want unless-stopped", s.Name, s.Restart)
		}
		checkMountsExist(t, s)
	}

	pg := p.Services["postgres"]
	if hc := pg.HealthCheck; hc == nil || !slices.Contains(hc.Test, "pg_isready") || !hasArgs(hc.Test, "-h", "127.0.0.1") {
		t.Errorf("postgres healthcheck %v: want pg_isready over TCP (-h 127.0.0.1)", pg.HealthCheck)
	}
	td := p.Services["tokend"]
	if dep, ok := td.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("tokend depends_on %+v: want postgres service_healthy", td.DependsOn)
	}
	known := configVars()
	for k := range td.Environment {
		if !known[k] && k != "BOOTSTRAP_ADMIN_KEY" { // read by the security layer
			t.Errorf("tokend's environment sets %s, which tokend does not read", k)
		}
	}
	if v := td.Environment["DB_CONNECT_TIMEOUT"]; v == nil || *v == "0" {
		t.Error("tokend must retry the database while it starts: set DB_CONNECT_TIMEOUT")
	}
	if v := td.Environment["BOOTSTRAP_ADMIN_KEY"]; v == nil || *v != "tl_example" {
		t.Errorf("BOOTSTRAP_ADMIN_KEY is not taken from the environment / .env: %v", v)
	}
	checkImageMatches(t, td)
	checkPrometheusScrapes(t, td)
}

func TestComposeRefusesToStartWithoutAnAdminKey(t *testing.T) {
	_, err := loadCompose(t, nil)
	if err == nil || !strings.Contains(err.Error(), ".env") {
		t.Errorf("compose without BOOTSTRAP_ADMIN_KEY: %v, want an error pointing at .env", err)
	}
	if _, err := os.Stat("../.env.example"); err != nil {
		t.Errorf("the error points at .env.example: %v", err)
	}
}

func checkMountsExist(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("%s mounts %s, which does not exist", s.Name, v.Source)
		}
	}
}

// checkImageMatches keeps the compose service consistent with the Dockerfile:
// the ports it publishes are the ones the image exposes, and the image runs
// as a non-root user.
func checkImageMatches(t *testing.T, td types.ServiceConfig) {
	t.Helper()
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	m := regexp.MustCompile(`(?m)^EXPOSE (.+)$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("the Dockerfile exposes no port")
	}
	exposed := strings.Fields(m[1])
	for _, addr := range []string{"HTTP_ADDR", "METRICS_ADDR"} {
		v := td.Environment[addr]
		if v == nil {
			t.Errorf("tokend's environment does not set %s", addr)
			continue
		}
		if port := (*v)[strings.LastIndex(*v, ":")+1:]; !slices.Contains(exposed, port) {
			t.Errorf("%s=%s: the Dockerfile exposes %v", addr, *v, exposed)
		}
	}
	if !regexp.MustCompile(`(?m)^FROM \S+:nonroot\s*$|^USER `).MatchString(df) {
		t.Error("the image does not run as a non-root user")
	}
}

// checkPrometheusScrapes makes sure compose's Prometheus scrapes tokend's
// METRICS_ADDR and loads the alerting rules.
func checkPrometheusScrapes(t *testing.T, td types.ServiceConfig) {
	t.Helper()
	var cfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	if !slices.Contains(cfg.RuleFiles, "/etc/prometheus/alerts.yaml") {
		t.Errorf("Prometheus rule_files %v does not load the mounted alerts.yaml", cfg.RuleFiles)
	}
	want := "tokend" + *td.Environment["METRICS_ADDR"]
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "tokenlease" && len(sc.StaticConfigs) == 1 && slices.Equal(sc.StaticConfigs[0].Targets, []string{want}) {
			return
		}
	}
	t.Errorf("no scrape job tokenlease with target %s: %+v", want, cfg.ScrapeConfigs)
}

func hasArgs(args []string, flag, value string) bool {
	i := slices.Index(args, flag)
	return i >= 0 && i+1 < len(args) && args[i+1] == value
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
