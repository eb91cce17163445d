package faultproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the fault the proxy applies to new traffic.
type Mode int32

// Modes.
const (
	// Pass forwards everything unchanged.
	Pass Mode = iota
	// DropCommitReply forwards the next COMMIT, waits for the server's answer, discards it and closes
	// the client's connection: the transaction committed, the client sees a broken connection. The mode
	// returns to Pass after one COMMIT.
	DropCommitReply
	// CloseBeforeCommit closes the client's connection instead of forwarding the next COMMIT: the
	// transaction did not commit, but the client cannot tell. The mode returns to Pass after one COMMIT.
	CloseBeforeCommit
	// Blackhole stops forwarding in both directions without closing anything, as a dead network does.
	Blackhole
	// Refuse closes new connections at once (existing ones keep working).
	Refuse
)

// Proxy forwards TCP connections from its listener to a target address, applying the current Mode.
type Proxy struct {
	target   string
	ln       net.Listener
	mode     atomic.Int32
	latency  atomic.Int64 // nanoseconds added before each forwarded chunk
	commits  atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	released chan struct{} // closed when a blackhole is lifted
}

// New starts a proxy on 127.0.0.1 (a free port) that forwards to target ("host:port").
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, released: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the proxy's listening address ("127.0.0.1:port").
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's listening port.
func (p *Proxy) Port() uint16 { return uint16(p.ln.Addr().(*net.TCPAddr).Port) }

// SetMode sets the fault for traffic from now on. Leaving Blackhole releases the held traffic.
func (p *Proxy) SetMode(m Mode) {
	old := Mode(p.mode.Swap(int32(m)))
	if old == Blackhole && m != Blackhole {
		p.mu.Lock()
		if !p.closed {
			close(p.released)
			p.released = make(chan struct{})
		}
		p.mu.Unlock()
	}
}

// SetLatency delays every forwarded chunk, in both directions, by d.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Commits returns how many COMMITs the proxy has seen from clients.
func (p *Proxy) Commits() int64 { return p.commits.Load() }

// CloseConnections closes every open proxied connection, as a network reset would.
func (p *Proxy) CloseConnections() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops the proxy, closes every connection and waits for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.released)
	p.mu.Unlock()
	err := p.ln.Close()
	p.CloseConnections()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if Mode(p.mode.Load()) == Refuse {
			_ = client.Close()
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client) || !p.track(server) {
			_ = client.Close()
			_ = server.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(client, server)
	}
}

// serve runs one proxied connection: client→server with the protocol-aware fault logic, server→client
// as a plain stream that the COMMIT logic can divert.
func (p *Proxy) serve(client, server net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	defer p.untrack(server)
	defer client.Close()
	defer server.Close()

	c := &conn{p: p, client: client, server: server, replies: make(chan []byte, 64)}
	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(done)
		c.serverToClient()
		// The server hung up (or its reply was swallowed): hang up on the client too, as the server
		// would, so that the client does not wait for a close that never comes.
		_ = client.Close()
	}()
	c.clientToServer()
	_ = client.Close()
	_ = server.Close()
	<-done
}

type conn struct {
	p       *Proxy
	client  net.Conn
	server  net.Conn
	replies chan []byte
	// swallow is set while the reply to a COMMIT is being discarded.
	swallow atomic.Bool
	// readyAfterSwallow is closed once the server has answered the swallowed COMMIT.
	readyAfterSwallow chan struct{}
}

// wait applies the current latency and holds traffic while the proxy is blackholed. It reports false
// when the proxy is closing.
func (c *conn) wait() bool {
	if d := time.Duration(c.p.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	for Mode(c.p.mode.Load()) == Blackhole {
		c.p.mu.Lock()
		ch, closed := c.p.released, c.p.closed
		c.p.mu.Unlock()
		if closed {
			return false
		}
		<-ch
	}
	return true
}

// clientToServer forwards the client's messages, framed so that a simple-query COMMIT is recognized.
func (c *conn) clientToServer() {
	// The startup message (and an SSLRequest/CancelRequest) has no type byte: a length, then the body.
	if !c.forwardUntyped() {
		return
	}
	for {
		msg, err := readTyped(c.client)
		if err != nil {
			return
		}
		if !c.wait() {
			return
		}
		if msg[0] == 'Q' && isCommit(msg[5:]) {
			c.p.commits.Add(1)
			switch Mode(c.p.mode.Load()) {
			case CloseBeforeCommit:
				c.p.mode.CompareAndSwap(int32(CloseBeforeCommit), int32(Pass))
				return
			case DropCommitReply:
				c.p.mode.CompareAndSwap(int32(DropCommitReply), int32(Pass))
				c.readyAfterSwallow = make(chan struct{})
				c.swallow.Store(true)
				if _, err := c.server.Write(msg); err != nil {
					return
				}
				// Wait (bounded) for the server to answer the COMMIT, then cut the client off.
				select {
				case <-c.readyAfterSwallow:
				case <-time.After(30 * time.Second):
				}
				return
			}
		}
		if _, err := c.server.Write(msg); err != nil {
			return
		}
	}
}

func (c *conn) forwardUntyped() bool {
	var hdr [4]byte
	if _, err := io.ReadFull(c.client, hdr[:]); err != nil {
		return false
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 4 || n > 1<<20 {
		return false
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(c.client, body); err != nil {
		return false
	}
	if _, err := c.server.Write(append(hdr[:], body...)); err != nil {
		return false
	}
	return true
}

// serverToClient forwards the server's messages. While a COMMIT's reply is swallowed it discards
// messages up to and including ReadyForQuery.
func (c *conn) serverToClient() {
	for {
		msg, err := readTyped(c.server)
		if err != nil {
			return
		}
		if c.swallow.Load() {
			if msg[0] == 'Z' {
				c.swallow.Store(false)
				close(c.readyAfterSwallow)
				return
			}
			continue
		}
		if !c.wait() {
			return
		}
		if _, err := c.client.Write(msg); err != nil {
			return
		}
	}
}

// readTyped reads one typed protocol message: a type byte, a 4-byte length (including itself), a body.
func readTyped(r io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n < 4 || n > 1<<30 {
		return nil, errors.New("faultproxy: bad message length")
	}
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[5:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// isCommit reports whether a simple query's text (NUL-terminated) is a COMMIT.
func isCommit(body []byte) bool {
	q := bytes.TrimRight(body, "\x00")
	q = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(q), []byte(";")))
	return bytes.EqualFold(q, []byte("commit")) || bytes.EqualFold(q, []byte("end"))
}

// WaitClosed waits until the proxy has no open connections or ctx ends.
func (p *Proxy) WaitClosed(ctx context.Context) error {
	for {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
