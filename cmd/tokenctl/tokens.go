package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenlease/tokenlease/client"
)

func commands() []command {
	return []command{
		{name: "generate", args: "N", help: "generate N random tokens", nargs: []int{1}, run: generate},
		{name: "import", args: "[FILE|-]", help: "import values, one per line, from FILE or stdin", nargs: []int{0, 1}, run: importCmd},
		{name: "assign", args: "[--holder H] [--ttl D] [--wait D]", help: "lease a free token", nargs: []int{0}, run: assign,
			flags: func(e *env, fs *flag.FlagSet) {
				fs.StringVar(&e.opts.assign.Holder, "holder", "", "who takes the lease")
				fs.DurationVar(&e.opts.assign.TTL, "ttl", 0, "lease length (server default when 0)")
				fs.DurationVar(&e.opts.assign.Wait, "wait", 0, "wait up to this long for a free token")
			}},
		{name: "unblock", args: "TOKEN [--lease-id N]", help: "free a token (only that lease with --lease-id)", nargs: []int{1}, run: unblock, flags: leaseFlag},
		{name: "keep-alive", args: "TOKEN [--lease-id N]", help: "keep a token alive (and renew that lease with --lease-id)", nargs: []int{1}, run: keepAlive, flags: leaseFlag},
		{name: "delete", args: "TOKEN", help: "delete a token", nargs: []int{1}, run: deleteCmd},
		{name: "get", args: "TOKEN", help: "look a token up", nargs: []int{1}, run: get},
		{name: "stats", help: "the pool's counts", nargs: []int{0}, run: stats},
		{name: "watch", args: "[--kind K,..] [--last-event-id ID]", help: "stream events, one line each, until interrupted", nargs: []int{0}, run: watch, flags: watchFlags},
		{name: "pools list", help: "list pools", nargs: []int{0}, run: poolsList},
		{name: "pools get", args: "NAME", help: "show a pool", nargs: []int{1}, run: poolsGet},
		{name: "pools put", args: "NAME [--lease-ttl D] [--keepalive-ttl D] [--max-lease-ttl D] [--max-tokens N]", help: "create or update a pool", nargs: []int{1}, run: poolsPut, flags: poolFlags},
		{name: "pools delete", args: "NAME", help: "delete an empty pool", nargs: []int{1}, run: poolsDelete},
		{name: "keys create", args: "NAME --role R [--pools P,..] [--expires-in D] [--rate-limit R]", help: "create an API key (its secret is shown once)", nargs: []int{1}, run: keysCreate, flags: keyFlags},
		{name: "keys list", help: "list API keys", nargs: []int{0}, run: keysList},
		{name: "keys revoke", args: "NAME", help: "revoke an API key", nargs: []int{1}, run: keysRevoke},
	}
}

func leaseFlag(e *env, fs *flag.FlagSet) {
	fs.Int64Var(&e.opts.leaseID, "lease-id", 0, "the lease id (fenced: only that lease)")
}

func generate(e *env, args []string) error {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return usageError("generate: N must be a number")
	}
	toks, err := e.c.Generate(e.ctx, e.pool, n)
	if err != nil {
		return err
	}
	rows := make([][]string, len(toks))
	for i, t := range toks {
		rows[i] = []string{t}
	}
	return e.printr.print(map[string][]string{"tokens": toks}, []string{"TOKEN"}, rows)
}

func assign(e *env, _ []string) error {
	a, err := e.c.Assign(e.ctx, e.pool, e.opts.assign)
	if err != nil {
		return err
	}
	return e.printr.print(a, []string{"TOKEN", "LEASE_ID", "LEASE_EXPIRES_AT", "HOLDER"},
		[][]string{{a.Token, fmt.Sprint(a.LeaseID), ts(a.LeaseExpiresAt), orDash(a.Holder)}})
}

func unblock(e *env, args []string) error {
	if err := e.c.Unblock(e.ctx, e.pool, args[0], e.opts.leaseID); err != nil {
		return err
	}
	return e.printr.print(map[string]string{"token": args[0], "state": "free"}, []string{"TOKEN", "STATE"}, [][]string{{args[0], "free"}})
}

func keepAlive(e *env, args []string) error {
	info, err := e.c.KeepAlive(e.ctx, e.pool, args[0], e.opts.leaseID)
	if err != nil {
		return err
	}
	return printToken(e, info)
}

func deleteCmd(e *env, args []string) error {
	if err := e.c.Delete(e.ctx, e.pool, args[0]); err != nil {
		return err
	}
	return e.printr.print(map[string]any{"token": args[0], "deleted": true}, []string{"TOKEN", "DELETED"}, [][]string{{args[0], "true"}})
}

func get(e *env, args []string) error {
	info, err := e.c.Get(e.ctx, e.pool, args[0])
	if err != nil {
		return err
	}
	return printToken(e, info)
}

func printToken(e *env, t client.TokenInfo) error {
	return e.printr.print(t, []string{"TOKEN", "STATE", "ALIVE_UNTIL", "LEASE_ID", "LEASE_EXPIRES_AT", "HOLDER"},
		[][]string{{orDash(t.Token + t.TokenFP), t.State, ts(t.AliveUntil), num(t.LeaseID), ts(t.LeaseExpiresAt), orDash(t.Holder)}})
}

func stats(e *env, _ []string) error {
	s, err := e.c.Stats(e.ctx, e.pool)
	if err != nil {
		return err
	}
	return e.printr.print(s, []string{"FREE", "ASSIGNED", "TOTAL"}, [][]string{{fmt.Sprint(s.Free), fmt.Sprint(s.Assigned), fmt.Sprint(s.Total)}})
}

// durationFlag is a client.Duration flag that stays nil unless given.
type durationFlag struct{ d **client.Duration }

func (f durationFlag) String() string { return "" }
func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d := client.Duration(v)
	*f.d = &d
	return nil
}
