package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/config"
)

// cleanEnv unsets every variable the configuration reads, for this test.
func cleanEnv(t *testing.T) {
	t.Helper()
	ct := reflect.TypeFor[config.Config]()
	for i := range ct.NumField() {
		if name := ct.Field(i).Tag.Get("env"); name != "" {
			t.Setenv(name, "") // restored when the test ends
			os.Unsetenv(name)
		}
	}
}

func TestLoadAcceptsDurationsInGoSyntaxAndSeconds(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"90s", 90 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"2m", 2 * time.Minute},
		{"60", 60 * time.Second},
		{"1.5", 1500 * time.Millisecond},
	} {
		t.Run(tc.value, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("LEASE_TTL", tc.value)
			c, err := config.Load()
			if err != nil {
				t.Fatalf("LEASE_TTL=%s: %v", tc.value, err)
			}
			if got := time.Duration(c.LeaseTTL); got != tc.want {
				t.Fatalf("LEASE_TTL=%s read as %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

func TestLoadDefaults(t *testing.T) {
	cleanEnv(t)
	c, err := config.Load()
	if err != nil {
		t.Fatalf("the defaults do not load: %v", err)
	}
	want := config.Defaults()
	want.PodName = c.PodName
	if c != want {
		t.Fatalf("Load with an empty environment = %+v, Defaults = %+v", c, want)
	}
	if time.Duration(c.LeaseTTL) != time.Minute || time.Duration(c.KeepaliveTTL) != 5*time.Minute ||
		time.Duration(c.SweepInterval) != time.Second || time.Duration(c.MaxLeaseTTL) != time.Hour || c.HTTPAddr != ":8080" {
		t.Fatalf("defaults differ from DESIGN.md section 3: %+v", c)
	}
	if c.PodName == "" {
		t.Fatal("no default pod name")
	}
}

// An invalid setting stops start-up with a message that names the variable.
func TestLoadNamesTheInvalidVariable(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		names []string
	}{
		{map[string]string{"LEASE_TTL": "soon"}, []string{"LEASE_TTL"}},
		{map[string]string{"LEASE_TTL": "50ms"}, []string{"LEASE_TTL"}},
		{map[string]string{"LEASE_TTL": "0"}, []string{"LEASE_TTL"}},
		{map[string]string{"LEASE_TTL": "2h"}, []string{"LEASE_TTL", "MAX_LEASE_TTL"}},
		{map[string]string{"KEEPALIVE_TTL": "-1s"}, []string{"KEEPALIVE_TTL"}},
		{map[string]string{"KEEPALIVE_TTL": "5 minutes"}, []string{"KEEPALIVE_TTL"}},
		{map[string]string{"SWEEP_INTERVAL": "0s"}, []string{"SWEEP_INTERVAL"}},
		{map[string]string{"SWEEP_INTERVAL": "NaN"}, []string{"SWEEP_INTERVAL"}},
		{map[string]string{"MAX_LEASE_TTL": "1e30"}, []string{"MAX_LEASE_TTL"}},
		{map[string]string{"MAX_TOKENS": "many"}, []string{"MAX_TOKENS"}},
		{map[string]string{"MAX_TOKENS": "0"}, []string{"MAX_TOKENS"}},
		{map[string]string{"MAX_TOKENS": "-5"}, []string{"MAX_TOKENS"}},
		{map[string]string{"SWEEP_BATCH_SIZE": "0"}, []string{"SWEEP_BATCH_SIZE"}},
		{map[string]string{"AUDIT_RETENTION": "forever"}, []string{"AUDIT_RETENTION"}},
		{map[string]string{"SHUTDOWN_GRACE": "-1"}, []string{"SHUTDOWN_GRACE"}},
		{map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		{map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		{map[string]string{"LOG_FORMAT": "JSON"}, []string{"LOG_FORMAT"}},
		{map[string]string{"BATCH_MAX": "0"}, []string{"BATCH_MAX"}},
		{map[string]string{"BATCH_MAX": "lots"}, []string{"BATCH_MAX"}},
		{map[string]string{"BATCH_WINDOW": "-1ms"}, []string{"BATCH_WINDOW"}},
		{map[string]string{"BATCH_WINDOW": "2s"}, []string{"BATCH_WINDOW"}},
		{map[string]string{"BATCH_ACROSS_POOLS": "sometimes"}, []string{"BATCH_ACROSS_POOLS"}},
		{map[string]string{"MAX_STREAMS": "0"}, []string{"MAX_STREAMS"}},
		{map[string]string{"PPROF_ADDR": "0.0.0.0:6060"}, []string{"PPROF_ADDR"}},
		{map[string]string{"PPROF_ADDR": ":6060"}, []string{"PPROF_ADDR"}},
		{map[string]string{"PPROF_ADDR": "127.0.0.1"}, []string{"PPROF_ADDR"}},
		{map[string]string{"METRICS_ADDR": "9464"}, []string{"METRICS_ADDR"}},
		{map[string]string{"METRICS_ADDR": ":8080"}, []string{"METRICS_ADDR", "HTTP_ADDR"}},
		{map[string]string{"DB_CONNECT_TIMEOUT": "-1s"}, []string{"DB_CONNECT_TIMEOUT"}},
		{map[string]string{"DB_CONNECT_TIMEOUT": "a while"}, []string{"DB_CONNECT_TIMEOUT"}},
		{map[string]string{"LEASE_TTL": "x", "MAX_TOKENS": "y"}, []string{"LEASE_TTL", "MAX_TOKENS"}},
	} {
		var parts []string
		for k, v := range tc.env {
			parts = append(parts, k+"="+v)
		}
		t.Run(strings.Join(parts, ","), func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := config.Load()
			if err == nil {
				t.Fatal("Load accepted it")
			}
			for _, name := range tc.names {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
			if strings.Contains(err.Error(), "LeaseTTL") || strings.Contains(err.Error(), "MaxTokens") {
				t.Errorf("error %q names a Go field instead of the variable", err)
			}
		})
	}
}

func TestMetricsAddrDefaultsWhenUnsetAndEmptyDisables(t *testing.T) {
	cleanEnv(t)
	c, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != ":9464" {
		t.Errorf("METRICS_ADDR unset: %q, want :9464", c.MetricsAddr)
	}
	t.Setenv("METRICS_ADDR", "")
	if c, err = config.Load(); err != nil || c.MetricsAddr != "" {
		t.Errorf("METRICS_ADDR empty: %q (%v), want metrics disabled", c.MetricsAddr, err)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:9999")
	if c, err = config.Load(); err != nil || c.MetricsAddr != "127.0.0.1:9999" {
		t.Errorf("METRICS_ADDR=127.0.0.1:9999: %q (%v)", c.MetricsAddr, err)
	}
}

func TestDBConnectTimeoutZeroFailsAtOnce(t *testing.T) {
	cleanEnv(t)
	c, err := config.Load()
	if err != nil || time.Duration(c.DBConnectTimeout) != time.Minute {
		t.Fatalf("DB_CONNECT_TIMEOUT unset: %s (%v), want 1m", time.Duration(c.DBConnectTimeout), err)
	}
	t.Setenv("DB_CONNECT_TIMEOUT", "0")
	if c, err = config.Load(); err != nil || c.DBConnectTimeout != 0 {
		t.Fatalf("DB_CONNECT_TIMEOUT=0: %s (%v), want 0", time.Duration(c.DBConnectTimeout), err)
	}
}
