package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/tokenlease/tokenlease/client"
)

// importCmd imports values, one per line (blank lines skipped), from a
// file or stdin, in batches of client.MaxBatch. A batch is one request:
// when one fails, the batches before it stay imported and the error says
// how many lines were done.
func importCmd(e *env, args []string) error {
	in := e.in
	total := int64(-1)
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return usageError(err.Error())
		}
		defer f.Close()
		if total, err = countLines(f); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		in = f
	}
	var bar *progressbar.ProgressBar
	if e.stderrIsTerminal() {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(e.err), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	var imported, existing, lines int
	batch := make([]string, 0, client.MaxBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := e.c.Import(e.ctx, e.pool, batch)
		if err != nil {
			return fmt.Errorf("import stopped after %d values (%d imported): %w", imported+existing, imported, err)
		}
		imported += len(res.Imported)
		existing += len(res.Existing)
		if bar != nil {
			bar.Add(len(batch))
		}
		batch = batch[:0]
		return nil
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
		v := strings.TrimSuffix(sc.Text(), "\r")
		if v == "" {
			continue
		}
		batch = append(batch, v)
		if len(batch) == client.MaxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read line %d: %w", lines+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	if bar != nil {
		bar.Finish()
	}
	return e.printr.print(map[string]int{"imported": imported, "existing": existing},
		[]string{"IMPORTED", "EXISTING"}, [][]string{{fmt.Sprint(imported), fmt.Sprint(existing)}})
}

func countLines(r io.Reader) (int64, error) {
	var n int64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.TrimSuffix(sc.Text(), "\r") != "" {
			n++
		}
	}
	return n, sc.Err()
}
