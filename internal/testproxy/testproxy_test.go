package testproxy_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/tokenlease/tokenlease/internal/testproxy"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line and reads the echo, returning the time it took.
func roundTrip(c net.Conn) (time.Duration, error) {
	start := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func TestLatencyCutAndRestore(t *testing.T) {
	t.Parallel()
	p := testproxy.Start(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := roundTrip(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.SetLatency(100 * time.Millisecond)
	if d, err := roundTrip(c); err != nil || d < 200*time.Millisecond {
		t.Fatalf("with 100ms each way: %v after %v, want at least 200ms", err, d)
	}
	p.Cut()
	if _, err := roundTrip(c); err == nil {
		t.Fatal("an open connection survived the cut")
	}
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		if _, err := roundTrip(c2); err == nil {
			t.Fatal("a new connection was served during the cut")
		}
		c2.Close()
	}
	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if d, err := roundTrip(c3); err != nil || d > time.Second {
		t.Fatalf("after restore: %v after %v", err, d)
	}
}
