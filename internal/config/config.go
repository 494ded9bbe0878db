// Package config owns the service's configuration as plain values: every
// setting is read from an environment variable, has a default that works on
// a developer machine, and is validated at start-up with a message that names
// the variable. It imports no package of the service; the API reads its
// durations (ttl, wait) with the same ParseDuration. Turning the values into
// each package's settings is wiring, done in internal/app.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/caarlos0/env/v11"
)

// Duration accepts Go syntax ("90s", "250ms") or a bare number of seconds.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for the env parser.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is the whole configuration of tokend.
type Config struct {
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://postgres@127.0.0.1:5432/tokens?sslmode=disable"`
	// ListenDatabaseURL is a direct (session) connection to the same
	// database, for what a transaction pooler such as PgBouncer in front of
	// DATABASE_URL cannot carry: the events layer's LISTEN and reader
	// connections and the migrations' session lock. Empty: DATABASE_URL.
	ListenDatabaseURL string   `env:"LISTEN_DATABASE_URL"`
	HTTPAddr          string   `env:"HTTP_ADDR" envDefault:":8080"`
	LeaseTTL          Duration `env:"LEASE_TTL" envDefault:"60s"`
	KeepaliveTTL      Duration `env:"KEEPALIVE_TTL" envDefault:"5m"`
	SweepInterval     Duration `env:"SWEEP_INTERVAL" envDefault:"1s"`
	MaxTokens         int64    `env:"MAX_TOKENS" envDefault:"10000000"`
	MaxLeaseTTL       Duration `env:"MAX_LEASE_TTL" envDefault:"1h"`
	AuditRetention    Duration `env:"AUDIT_RETENTION" envDefault:"720h"`
	SweepBatchSize    int      `env:"SWEEP_BATCH_SIZE" envDefault:"5000"`
	ShutdownGrace     Duration `env:"SHUTDOWN_GRACE" envDefault:"20s"`
	LogLevel          string   `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat         string   `env:"LOG_FORMAT" envDefault:"text"`
	PodName           string   `env:"POD_NAME"`
	// MetricsAddr is where GET /metrics listens; set and empty disables it,
	// unset means DefaultMetricsAddr (the env parser cannot tell the two
	// apart, so Load applies the default).
	MetricsAddr string `env:"METRICS_ADDR"`
	// DBConnectTimeout is how long start-up retries the first connection to
	// the database (PostgreSQL may come up after tokend); 0 fails at once.
	DBConnectTimeout Duration `env:"DB_CONNECT_TIMEOUT" envDefault:"60s"`
	// Batching coalesces a pod's concurrent assigns, unblocks and
	// keep-alives into one statement per kind (on|off); off serves every
	// request with its own.
	Batching Switch `env:"BATCHING" envDefault:"on"`
	// BatchMax caps the requests one batched statement serves.
	BatchMax int `env:"BATCH_MAX" envDefault:"64"`
	// BatchWindow caps how long, under load, a round that finds its batcher
	// idle waits for the callers of the round just answered to come back
	// (0: never waits; an idle pod never waits either way).
	BatchWindow Duration `env:"BATCH_WINDOW" envDefault:"5ms"`
	// BatchAcrossPools lets one batched assign or unblock statement serve
	// the requests of all pools in a round (on); off sends one per pool, so
	// that no statement touches two pools (a database distributed by pool).
	BatchAcrossPools Switch `env:"BATCH_ACROSS_POOLS" envDefault:"on"`
	// MaxStreams caps the event streams (GET /tokens/events) one pod holds
	// open; past it a stream is refused with 503.
	MaxStreams int `env:"MAX_STREAMS" envDefault:"1000"`
	// PprofAddr serves Go's profiler on a loopback address for performance
	// work (e.g. 127.0.0.1:6060); empty, nothing listens.
	PprofAddr string `env:"PPROF_ADDR"`
	// BenchUnobserved is for benchmarks only: on serves requests without
	// request ids, access logs and request metrics, so that `tokenbench
	// suite -ab` can measure what they cost (issue 12: at most 3 %).
	// Never set it in production: errors then carry no request id.
	BenchUnobserved Switch `env:"BENCH_UNOBSERVED" envDefault:"off"`
	Auth
}

// MinLeaseTTL is the shortest lease the service grants (DESIGN.md section 1),
// the lower bound of LEASE_TTL. The domain checks an assign's ttl against
// the same bound (tokens.MinLeaseTTL; internal/app tests that they agree).
const MinLeaseTTL = 100 * time.Millisecond

// DefaultMetricsAddr is METRICS_ADDR when the variable is not set.
const DefaultMetricsAddr = ":9464"

// Switch is an on/off setting: on, off, true, false, 1, 0.
type Switch bool

// UnmarshalText implements encoding.TextUnmarshaler for the env parser.
func (s *Switch) UnmarshalText(b []byte) error {
	switch string(b) {
	case "on", "true", "1":
		*s = true
	case "off", "false", "0":
		*s = false
	default:
		return fmt.Errorf("want on or off, got %q", b)
	}
	return nil
}

// Load reads the configuration from the environment and validates it.
func Load() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return Config{}, explain(err)
	}
	if _, set := os.LookupEnv("METRICS_ADDR"); !set {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.PodName == "" {
		c.PodName = defaultPodName()
	}
	return c, c.Validate()
}

// Defaults returns the configuration as it is with an empty environment.
func Defaults() Config {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: map[string]string{}}); err != nil {
		panic(fmt.Sprintf("config: defaults do not parse: %v", err))
	}
	c.PodName = defaultPodName()
	c.MetricsAddr = DefaultMetricsAddr
	return c
}

func defaultPodName() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Validate checks ranges and relations between settings.
func (c Config) Validate() error {
	var errs []error
	positive := func(name string, d Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration, got %s", name, time.Duration(d)))
		}
	}
	positive("LEASE_TTL", c.LeaseTTL)
	positive("KEEPALIVE_TTL", c.KeepaliveTTL)
	positive("SWEEP_INTERVAL", c.SweepInterval)
	positive("MAX_LEASE_TTL", c.MaxLeaseTTL)
	positive("AUDIT_RETENTION", c.AuditRetention)
	positive("SHUTDOWN_GRACE", c.ShutdownGrace)
	if c.LeaseTTL > 0 && time.Duration(c.LeaseTTL) < MinLeaseTTL {
		errs = append(errs, fmt.Errorf("LEASE_TTL must be at least %s, got %s", MinLeaseTTL, time.Duration(c.LeaseTTL)))
	}
	if c.LeaseTTL > c.MaxLeaseTTL {
		errs = append(errs, fmt.Errorf("LEASE_TTL (%s) must not exceed MAX_LEASE_TTL (%s)", time.Duration(c.LeaseTTL), time.Duration(c.MaxLeaseTTL)))
	}
	if c.MaxTokens < 1 {
		errs = append(errs, fmt.Errorf("MAX_TOKENS must be at least 1, got %d", c.MaxTokens))
	}
	if c.SweepBatchSize < 1 || c.SweepBatchSize > 100000 {
		errs = append(errs, fmt.Errorf("SWEEP_BATCH_SIZE must lie between 1 and 100000, got %d", c.SweepBatchSize))
	}
	if c.BatchMax < 1 || c.BatchMax > 10000 {
		errs = append(errs, fmt.Errorf("BATCH_MAX must lie between 1 and 10000, got %d", c.BatchMax))
	}
	if c.BatchWindow < 0 || time.Duration(c.BatchWindow) > time.Second {
		errs = append(errs, fmt.Errorf("BATCH_WINDOW must lie between 0 and 1s, got %s", time.Duration(c.BatchWindow)))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 1000000 {
		errs = append(errs, fmt.Errorf("MAX_STREAMS must lie between 1 and 1000000, got %d", c.MaxStreams))
	}
	if c.PprofAddr != "" && !isLoopback(c.PprofAddr) {
		errs = append(errs, fmt.Errorf("PPROF_ADDR must be a loopback address (e.g. 127.0.0.1:6060), got %q", c.PprofAddr))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be text or json, got %q", c.LogFormat))
	}
	if c.DBConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("DB_CONNECT_TIMEOUT must not be negative, got %s", time.Duration(c.DBConnectTimeout)))
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("METRICS_ADDR must be host:port or :port (empty disables metrics), got %q", c.MetricsAddr))
		} else if c.MetricsAddr == c.HTTPAddr {
			errs = append(errs, fmt.Errorf("METRICS_ADDR must differ from HTTP_ADDR, both are %q", c.MetricsAddr))
		}
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL must not be empty"))
	}
	errs = append(errs, c.Auth.validate()...)
	return errors.Join(errs...)
}

// DirectDatabaseURL is LISTEN_DATABASE_URL, or DATABASE_URL when it is not set.
func (c Config) DirectDatabaseURL() string {
	if c.ListenDatabaseURL != "" {
		return c.ListenDatabaseURL
	}
	return c.DatabaseURL
}

// Pooled reports whether DATABASE_URL is set apart from the direct
// connection: it may then lead to a transaction pooler, through which no
// session state (LISTEN, session locks) survives a statement.
func (c Config) Pooled() bool { return c.DirectDatabaseURL() != c.DatabaseURL }

// isLoopback reports whether addr is host:port on a loopback interface: the
// profiler must never be reachable from outside the machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// explain rewrites the env parser's errors, which name Go fields, to name the
// environment variables instead.
func explain(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	t := reflect.TypeFor[Config]()
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				errs = append(errs, fmt.Errorf("%s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}
