package apptest

import "github.com/tokenlease/tokenlease/internal/apptest/wait"

// Eventually polls cond until it holds, failing the test when it does not
// within the deadline (see package wait).
var Eventually = wait.Eventually
