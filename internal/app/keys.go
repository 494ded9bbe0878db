package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/internal/auth"
	"github.com/tokenlease/tokenlease/internal/config"
	"github.com/tokenlease/tokenlease/internal/migrate"
)

const keysUsage = `usage:
  tokend keys generate-secret          print a new random key (no database; for BOOTSTRAP_ADMIN_KEY)
  tokend keys create -name N -role R [-pools a,b] [-expires-in 720h] [-rate-limit 10]
                                       create a key and print its secret (shown only this once)
  tokend keys list                     list keys (never secrets)
  tokend keys revoke NAME              revoke a key (every pod refuses it within 2 s)`

// Keys runs `tokend keys ...`: key admin without the HTTP API, against
// DATABASE_URL. Secrets go to out only.
func Keys(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	if args[0] == "generate-secret" {
		_, err := fmt.Fprintln(out, auth.NewSecret())
		return err
	}
	run, ok := map[string]func(context.Context, *auth.Store, []string, io.Writer) error{
		"create": keysCreate, "list": keysList, "revoke": keysRevoke,
	}[args[0]]
	if !ok {
		return fmt.Errorf("unknown keys command %q\n%s", args[0], keysUsage)
	}
	pool, err := openMigrated(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return run(ctx, auth.NewStore(pool), args[1:], out)
}

func openMigrated(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	if err := migrate.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := migrate.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func keysCreate(ctx context.Context, s *auth.Store, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tokend keys create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the key's unique name (the actor in the audit trail)")
	role := fs.String("role", "", "admin, operator, client or reader")
	pools := fs.String("pools", "", "comma-separated pools (default: every pool)")
	expiresIn := fs.String("expires-in", "", "lifetime, e.g. 720h (default: none)")
	rateLimit := fs.Float64("rate-limit", 0, "requests/s of this key on each pod (default: RATE_LIMIT)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *name == "" || *role == "" {
		return errors.New(keysUsage)
	}
	k := auth.NewKey{Name: *name, Role: auth.Role(*role), RateLimit: *rateLimit}
	if *pools != "" {
		k.Pools = strings.Split(*pools, ",")
	}
	if *expiresIn != "" {
		d, err := config.ParseDuration(*expiresIn)
		if err != nil {
			return fmt.Errorf("-expires-in: %w", err)
		}
		k.ExpiresIn = d
	}
	secret, info, err := s.Create(ctx, k)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", secret)
	if err == nil && info.ExpiresAt != nil {
		_, err = fmt.Fprintf(out, "# %s (%s) expires at %s\n", info.Name, info.Role, info.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return err
}

func keysList(ctx context.Context, s *auth.Store, args []string, out io.Writer) error {
	if len(args) > 0 {
		return errors.New(keysUsage)
	}
	keys, err := s.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPOOLS\tEXPIRES\tRATE_LIMIT\tCREATED\tREVOKED\tLAST_USED")
	for _, k := range keys {
		pools := "*"
		if k.Pools != nil {
			pools = strings.Join(k.Pools, ",")
		}
		rate := "-"
		if k.RateLimit != nil {
			rate = fmt.Sprintf("%g/s", *k.RateLimit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.Role, pools, optStamp(k.ExpiresAt), rate,
			k.CreatedAt.UTC().Format(time.RFC3339), optStamp(k.RevokedAt), optStamp(k.LastUsedAt))
	}
	return tw.Flush()
}

func optStamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keysRevoke(ctx context.Context, s *auth.Store, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New(keysUsage)
	}
	k, err := s.Revoke(ctx, args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "revoked %s\n", k.Name)
	return err
}
