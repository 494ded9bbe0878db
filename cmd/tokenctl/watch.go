package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
)

func watchFlags(e *env, fs *flag.FlagSet) {
	fs.Func("kind", "only these kinds, comma-separated", func(s string) error {
		e.opts.watch.Kinds = append(e.opts.watch.Kinds, strings.Split(s, ",")...)
		return nil
	})
	fs.StringVar(&e.opts.watch.LastEventID, "last-event-id", "", "resume after this event id")
}

// watch prints one line per event until interrupted: columns with -o
// table, one JSON object per line (the event's data plus its id) with -o
// json.
func watch(e *env, _ []string) error {
	if e.pool != "" {
		e.opts.watch.Pools = strings.Split(e.pool, ",")
	}
	for ev, err := range e.c.Events(e.ctx, e.opts.watch) {
		if err != nil {
			return err
		}
		if e.output == "json" {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				return err
			}
			m["id"] = ev.ID
			b, _ := json.Marshal(m)
			fmt.Fprintf(e.out, "%s\n", b)
			continue
		}
		fmt.Fprintf(e.out, "%s  %s  %-10s  %s  lease=%s  holder=%s\n", ev.ID, ts(ev.At), ev.Kind,
			orDash(ev.Token+ev.TokenFP), num(ev.LeaseID), orDash(ev.Holder))
	}
	return e.ctx.Err()
}
