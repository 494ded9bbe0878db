package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/tokenlease/tokenlease/client"
)

func keyFlags(e *env, fs *flag.FlagSet) {
	fs.StringVar(&e.opts.key.Role, "role", "", "admin, operator, client or reader")
	fs.Func("pools", "comma-separated pools (default: all)", func(s string) error {
		e.opts.key.Pools = strings.Split(s, ",")
		return nil
	})
	fs.Var(durationFlag{&e.opts.key.ExpiresIn}, "expires-in", "lifetime (default: never expires)")
	fs.Func("rate-limit", "requests per second", func(s string) error {
		r, err := strconv.ParseFloat(s, 64)
		e.opts.key.RateLimit = &r
		return err
	})
}

func keyRows(keys ...client.KeyInfo) [][]string {
	rows := make([][]string, len(keys))
	for i, k := range keys {
		rows[i] = []string{k.Name, k.Role, orDash(strings.Join(k.Pools, ",")), ts(k.ExpiresAt), ts(k.RevokedAt), ts(k.LastUsedAt)}
	}
	return rows
}

var keyHead = []string{"NAME", "ROLE", "POOLS", "EXPIRES_AT", "REVOKED_AT", "LAST_USED_AT"}

func keysCreate(e *env, args []string) error {
	if e.opts.key.Role == "" {
		return usageError("keys create: --role is required")
	}
	e.opts.key.Name = args[0]
	k, err := e.c.CreateKey(e.ctx, e.opts.key)
	if err != nil {
		return err
	}
	rows := keyRows(k.KeyInfo)
	rows[0] = append(rows[0], k.Key)
	if err := e.printr.print(k, append(keyHead, "KEY"), rows); err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.err, "The key is shown once: store it now.")
	return err
}

func keysList(e *env, _ []string) error {
	keys, err := e.c.ListKeys(e.ctx)
	if err != nil {
		return err
	}
	return e.printr.print(map[string][]client.KeyInfo{"keys": keys}, keyHead, keyRows(keys...))
}

func keysRevoke(e *env, args []string) error {
	if err := e.c.RevokeKey(e.ctx, args[0]); err != nil {
		return err
	}
	return e.printr.print(map[string]any{"name": args[0], "revoked": true}, []string{"NAME", "REVOKED"}, [][]string{{args[0], "true"}})
}
