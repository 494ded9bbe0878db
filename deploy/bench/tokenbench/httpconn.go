package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// httpConn is one keep-alive HTTP/1.1 connection speaking just enough of the
// protocol for the benchmark: a request line, Host, Content-Length, and a
// response with Content-Length or chunked encoding. It costs a few
// microseconds of CPU per request, a fraction of net/http's client, because
// the load generator shares the machine's cores with what it measures.
type httpConn struct {
	addr string // host:port
	host string // Host header
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	body []byte
}

func newHTTPConn(target string) (*httpConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("target %q: only http:// is supported", target)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	return &httpConn{addr: host, host: u.Host, wbuf: make([]byte, 0, 512), body: make([]byte, 0, 512)}, nil
}

func (h *httpConn) dial() error {
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	h.c = c
	if h.br == nil {
		h.br = bufio.NewReaderSize(c, 4096)
	} else {
		h.br.Reset(c)
	}
	return nil
}

func (h *httpConn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// do sends one request and returns the status and the body, which stays
// valid until the next call. On any transport error the connection is
// closed; the next call dials again.
func (h *httpConn) do(method, path string, body []byte) (int, []byte, error) {
	if h.c == nil {
		if err := h.dial(); err != nil {
			return 0, nil, err
		}
	}
	b := h.wbuf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, benchAuthorization...)
	if len(body) > 0 {
		b = append(b, "\r\nContent-Type: application/json"...)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	h.wbuf = b
	if _, err := h.c.Write(b); err != nil {
		h.close()
		return 0, nil, err
	}
	status, resp, closeAfter, err := h.readResponse()
	if err != nil {
		h.close()
		return 0, nil, err
	}
	if closeAfter {
		h.close()
	}
	return status, resp, nil
}

var errMalformed = errors.New("malformed HTTP response")

func (h *httpConn) readResponse() (status int, body []byte, closeAfter bool, err error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, nil, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, errMalformed
	}
	contentLength := -1
	chunked := false
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, nil, false, errMalformed
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.Atoi(string(value))
			if err != nil {
				return 0, nil, false, errMalformed
			}
			contentLength = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			closeAfter = asciiEqualFold(value, "close")
		}
	}
	h.body = h.body[:0]
	switch {
	case chunked:
		for {
			line, err = h.br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if err != nil {
				return 0, nil, false, errMalformed
			}
			if size == 0 {
				// trailers until the empty line
				for {
					line, err = h.br.ReadSlice('\n')
					if err != nil {
						return 0, nil, false, err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			start := len(h.body)
			h.body = append(h.body, make([]byte, size)...)
			if _, err := io.ReadFull(h.br, h.body[start:]); err != nil {
				return 0, nil, false, err
			}
			if _, err := h.br.Discard(2); err != nil { // CRLF after the chunk
				return 0, nil, false, err
			}
		}
	case contentLength >= 0:
		if cap(h.body) < contentLength {
			h.body = make([]byte, contentLength)
		}
		h.body = h.body[:contentLength]
		if _, err := io.ReadFull(h.br, h.body); err != nil {
			return 0, nil, false, err
		}
	default:
		// No length: the body runs to the end of the connection.
		b, err := io.ReadAll(h.br)
		if err != nil {
			return 0, nil, false, err
		}
		h.body = append(h.body, b...)
		closeAfter = true
	}
	return status, h.body, closeAfter, nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
