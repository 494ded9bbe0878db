package app_test

import (
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/app"
	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/tokens"
)

// The configuration refuses a LEASE_TTL the domain would refuse as an
// assign's ttl: the two bounds are one.
func TestConfigAndDomainShareTheLeaseBound(t *testing.T) {
	if config.MinLeaseTTL != tokens.MinLeaseTTL {
		t.Fatalf("config.MinLeaseTTL %s, tokens.MinLeaseTTL %s", config.MinLeaseTTL, tokens.MinLeaseTTL)
	}
}

// Every setting of the domain comes from the configuration.
func TestSettingsCarryTheConfiguration(t *testing.T) {
	cfg := config.Defaults()
	cfg.BatchMax = 7
	cfg.Batching = false
	if app.Settings(cfg).BatchPerPool {
		t.Fatal("BATCH_ACROSS_POOLS is on by default: rounds go out across pools")
	}
	cfg.BatchAcrossPools = false
	s := app.Settings(cfg)
	if s.BatchMax != 7 || s.Batching || !s.BatchPerPool || s.Pod != cfg.PodName || s.MaxTokens != cfg.MaxTokens ||
		s.LeaseTTL != time.Duration(cfg.LeaseTTL) || s.MaxLeaseTTL != time.Duration(cfg.MaxLeaseTTL) || s.KeepaliveTTL != time.Duration(cfg.KeepaliveTTL) {
		t.Fatalf("settings %+v do not carry %+v", s, cfg)
	}
}

// config refuses a malformed BOOTSTRAP_ADMIN_KEY by the key's shape, which
// internal/auth owns: both must agree.
func TestConfigKnowsTheKeyFormat(t *testing.T) {
	for _, s := range []string{auth.NewSecret(), auth.NewSecret(), "tl_short", "", "xx_" + auth.NewSecret()[3:], auth.NewSecret() + "A"} {
		if got, want := config.LooksLikeAPIKey(s), auth.LooksLikeKey(s); got != want {
			t.Errorf("%q: config says %v, auth says %v", s, got, want)
		}
	}
}
