package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
)

// printer writes one result: as a table (head and rows) or as JSON (v).
type printer interface {
	print(v any, head []string, rows [][]string) error
}

type tablePrinter struct{ w io.Writer }

func (p tablePrinter) print(_ any, head []string, rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	if len(head) > 0 {
		fmt.Fprintln(tw, strings.Join(head, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

type jsonPrinter struct{ w io.Writer }

func (p jsonPrinter) print(v any, _ []string, _ [][]string) error {
	enc := json.NewEncoder(p.w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func isTerminal(f *os.File) bool { return isatty.IsTerminal(f.Fd()) }

// ts renders a server time for a table; zero is "-".
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}
