// Command droptemplate drops the tests' template database (make test runs it
// after every test package has finished; see testdb.DropTemplate).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tokenlease/tokenlease/internal/testdb"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testdb.DropTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "droptemplate: the template database stays:", err)
	}
}
