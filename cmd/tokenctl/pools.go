package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/tokenlease/tokenlease/client"
)

func poolFlags(e *env, fs *flag.FlagSet) {
	fs.Var(durationFlag{&e.opts.pool.LeaseTTL}, "lease-ttl", "lease length when an assign names none")
	fs.Var(durationFlag{&e.opts.pool.KeepaliveTTL}, "keepalive-ttl", "life of a token without keep-alive")
	fs.Var(durationFlag{&e.opts.pool.MaxLeaseTTL}, "max-lease-ttl", "longest lease an assign may ask for")
	fs.Func("max-tokens", "pool cap", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		e.opts.pool.MaxTokens = &n
		return err
	})
}

func printPools(e *env, v any, pools ...client.Pool) error {
	rows := make([][]string, len(pools))
	for i, p := range pools {
		rows[i] = []string{p.Name, p.LeaseTTL.String(), p.KeepaliveTTL.String(), p.MaxLeaseTTL.String(),
			fmt.Sprint(p.MaxTokens), fmt.Sprint(p.Free), fmt.Sprint(p.Assigned), fmt.Sprint(p.Total)}
	}
	return e.printr.print(v, []string{"NAME", "LEASE_TTL", "KEEPALIVE_TTL", "MAX_LEASE_TTL", "MAX_TOKENS", "FREE", "ASSIGNED", "TOTAL"}, rows)
}

func poolsList(e *env, _ []string) error {
	pools, err := e.c.ListPools(e.ctx)
	if err != nil {
		return err
	}
	return printPools(e, map[string][]client.Pool{"pools": pools}, pools...)
}

func poolsGet(e *env, args []string) error {
	p, err := e.c.GetPool(e.ctx, args[0])
	if err != nil {
		return err
	}
	return printPools(e, p, p)
}

func poolsPut(e *env, args []string) error {
	p, _, err := e.c.PutPool(e.ctx, args[0], e.opts.pool)
	if err != nil {
		return err
	}
	return printPools(e, p, p)
}

func poolsDelete(e *env, args []string) error {
	if err := e.c.DeletePool(e.ctx, args[0]); err != nil {
		return err
	}
	return e.printr.print(map[string]any{"name": args[0], "deleted": true}, []string{"NAME", "DELETED"}, [][]string{{args[0], "true"}})
}
