package client_test

import (
	"net"
	"sync"
	"testing"
)

// proxy is a TCP proxy in front of a pod that the test controls: it can
// stall traffic, cut every open connection, or die like a killed pod.
type proxy struct {
	URL    string
	ln     net.Listener
	target string
	gate   sync.RWMutex // write-locked while stalled
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	stall  bool
}

func newProxy(t *testing.T, targetURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{URL: "http://" + ln.Addr().String(), ln: ln, target: targetURL[len("http://"):], conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() { p.Resume(); p.Kill() })
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock() // blocks while stalled
			p.gate.RUnlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Stall holds every byte in flight, in both directions, until Resume.
func (p *proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stall {
		p.stall = true
		p.gate.Lock()
	}
}

// Resume lets traffic flow again.
func (p *proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stall {
		p.stall = false
		p.gate.Unlock()
	}
}

// Cut closes every open connection; new ones are accepted.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Kill stops listening and cuts every connection: from the client's side
// the pod is gone (connections refused), as after kill -9.
func (p *proxy) Kill() {
	p.ln.Close()
	p.Cut()
}
