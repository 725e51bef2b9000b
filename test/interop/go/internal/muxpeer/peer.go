// Package muxpeer is a flag-driven muxado v2 test peer, written once against a small adapter so that the same
// program runs on github.com/inconshreveable/muxado and on golang.ngrok.com/muxado/v2.
//
//	-role server -addr 127.0.0.1:0 -mode echo|typed|heartbeat|goaway|drain|stall|sink
//	-role client -addr host:port   -mode echo|typed|heartbeat|goaway|close|stall|bulk|rr
//
// A server prints "listening <addr>" once, then one line per event. A client prints its results and exits
// 0 on success, 1 on failure.
package muxpeer

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cpuMillis is the CPU time (user + system) this process has used, for benchmarks that compare CPU per byte.
func cpuMillis() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	ms := func(t syscall.Timeval) float64 { return float64(t.Sec)*1e3 + float64(t.Usec)/1e3 }
	return ms(ru.Utime) + ms(ru.Stime)
}

// Stream is what both libraries' streams provide.
type Stream interface {
	net.Conn
	CloseWrite() error
}

// Session adapts one library's session, typed session and heartbeat.
type Session interface {
	OpenStream() (Stream, error)
	AcceptStream() (Stream, error)
	OpenTypedStream(t uint32) (Stream, error)
	// AcceptTypedStream goes through the library's Heartbeat, which answers heartbeat streams itself.
	AcceptTypedStream() (Stream, uint32, error)
	StartHeartbeat(interval, tolerance time.Duration, cb func(latency time.Duration, timeout bool))
	GoAway(code uint32, debug []byte) error
	Close() error
	Wait() (local error, remote error, debug []byte)
	Code(err error) uint32
}

// Lib builds sessions of one library.
type Lib struct {
	Name   string
	Client func(conn net.Conn) Session
	Server func(conn net.Conn) Session
}

var (
	role        = flag.String("role", "server", "server or client")
	mode        = flag.String("mode", "echo", "what to do")
	addr        = flag.String("addr", "127.0.0.1:0", "address to listen on or connect to")
	streams     = flag.Int("streams", 1, "client: streams to open")
	concurrency = flag.Int("concurrency", 64, "client: streams at once")
	size        = flag.Int("bytes", 1024, "client: bytes per stream (bulk: per stream total; rr: per round trip)")
	rounds      = flag.Int("n", 1000, "client rr: round trips")
	interval    = flag.Duration("interval", 100*time.Millisecond, "heartbeat interval")
	tolerance   = flag.Duration("tolerance", 100*time.Millisecond, "heartbeat tolerance")
	duration    = flag.Duration("duration", time.Second, "client heartbeat/stall: how long to run")
	code        = flag.Uint("code", 0, "goaway: error code")
	debug       = flag.String("debug", "bye", "goaway: debug text")
	once        = flag.Bool("once", false, "server: serve one connection, then exit")
	trace       = flag.Bool("trace", false, "print every byte read (rx) and written (tx) on the connection, in hex")
	payload     = flag.String("payload", "before goaway", "client goaway/close: what to echo first")
)

// tracedConn prints the raw bytes that cross the connection, so tests can compare them with golden traces.
type tracedConn struct{ net.Conn }

func (c tracedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		say("rx %x", b[:n])
	}
	return n, err
}

func (c tracedConn) Write(b []byte) (int, error) {
	say("tx %x", b)
	return c.Conn.Write(b)
}

func traced(conn net.Conn) net.Conn {
	if *trace {
		return tracedConn{conn}
	}
	return conn
}

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func say(format string, args ...interface{}) {
	out.Lock()
	fmt.Fprintf(out.w, format+"\n", args...)
	out.w.Flush()
	out.Unlock()
}

func fail(format string, args ...interface{}) {
	say("FAIL "+format, args...)
	os.Exit(1)
}

// Main runs the peer.
func Main(lib Lib) {
	flag.Parse()
	if *role == "server" {
		serve(lib)
		return
	}
	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("dial: %v", err)
	}
	conn.(*net.TCPConn).SetNoDelay(true)
	sess := lib.Client(traced(conn))
	client(sess)
}

func serve(lib Lib) {
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fail("listen: %v", err)
	}
	say("listening %s", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		conn.(*net.TCPConn).SetNoDelay(true)
		sess := lib.Server(traced(conn))
		done := make(chan struct{})
		go func() {
			local, remote, dbg := sess.Wait()
			say("end local=%d remote=%d debug=%q", sess.Code(local), sess.Code(remote), string(dbg))
			close(done)
		}()
		go serveSession(sess)
		if *once {
			<-done
			return
		}
	}
}

func serveSession(sess Session) {
	switch *mode {
	case "echo", "goaway":
		for n := 0; ; n++ {
			s, err := sess.AcceptStream()
			if err != nil {
				return
			}
			if *mode == "goaway" {
				echo(s)
				say("goaway %d", *code)
				sess.GoAway(uint32(*code), []byte(*debug))
				sess.Close()
				return
			}
			go echo(s)
		}
	case "drain":
		// GoAway after the first stream, without closing: the streams already open go on being served.
		for n := 0; ; n++ {
			s, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go echo(s)
			if n == 0 {
				sess.GoAway(uint32(*code), []byte(*debug))
				say("goaway %d", *code)
			}
		}
	case "typed", "heartbeat":
		if *mode == "heartbeat" {
			sess.StartHeartbeat(*interval, *tolerance, report)
		}
		for {
			s, t, err := sess.AcceptTypedStream()
			if err != nil {
				say("accept error %v", err)
				return
			}
			go func() {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], t)
				s.Write(b[:])
				echo(s)
			}()
		}
	case "stall":
		// Accepts (unless -streams 0) and never reads: the writer must stop at the window.
		if *streams == 0 {
			select {}
		}
		var held []Stream
		for {
			s, err := sess.AcceptStream()
			if err != nil {
				return
			}
			held = append(held, s)
			say("accepted %d", len(held))
		}
	case "sink":
		for {
			s, err := sess.AcceptStream()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, s)
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(n))
				s.Write(b[:])
				s.CloseWrite()
				s.Close()
			}()
		}
	default:
		fail("unknown server mode %s", *mode)
	}
}

func echo(s Stream) {
	_, err := io.Copy(s, s)
	if err != nil {
		say("stream error %v", err)
	}
	s.CloseWrite()
	s.Close()
}

func report(latency time.Duration, timeout bool) {
	if timeout {
		say("timeout")
	} else {
		say("beat %d", latency.Nanoseconds())
	}
}

func pattern(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed | 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// roundTrip writes payload, half-closes, reads everything back and compares checksums.
func roundTrip(s Stream, payload []byte, prefix []byte) error {
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read: %v", err)
	}
	if err := <-errc; err != nil {
		return fmt.Errorf("write: %v", err)
	}
	want := append(append([]byte{}, prefix...), payload...)
	if len(got) != len(want) || crc32.ChecksumIEEE(got) != crc32.ChecksumIEEE(want) {
		return fmt.Errorf("echo mismatch: got %d bytes crc %08x, want %d crc %08x", len(got), crc32.ChecksumIEEE(got), len(want), crc32.ChecksumIEEE(want))
	}
	return s.Close()
}

func parallel(n int, f func(i int) error) error {
	var first atomic.Value
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				first.CompareAndSwap(nil, err)
			}
		}(i)
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

func client(sess Session) {
	start := time.Now()
	switch *mode {
	case "echo":
		var total int64
		err := parallel(*streams, func(i int) error {
			s, err := sess.OpenStream()
			if err != nil {
				return err
			}
			n := *size + (i*7919)%(*size+1)
			atomic.AddInt64(&total, int64(n))
			return roundTrip(s, pattern(n, uint32(i+1)), nil)
		})
		if err != nil {
			fail("%v", err)
		}
		say("ok streams=%d bytes=%d ms=%d", *streams, total, time.Since(start).Milliseconds())
	case "typed":
		err := parallel(*streams, func(i int) error {
			t := uint32(i + 1)
			s, err := sess.OpenTypedStream(t)
			if err != nil {
				return err
			}
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], t)
			return roundTrip(s, pattern(*size, t), b[:])
		})
		if err != nil {
			fail("%v", err)
		}
		say("ok typed=%d", *streams)
	case "heartbeat":
		sess.StartHeartbeat(*interval, *tolerance, report)
		go func() {
			for {
				if _, _, err := sess.AcceptTypedStream(); err != nil {
					return
				}
			}
		}()
		time.Sleep(*duration)
		sess.Close()
		say("done")
	case "goaway", "close":
		s, err := sess.OpenStream()
		if err != nil {
			fail("open: %v", err)
		}
		if err := roundTrip(s, []byte(*payload), nil); err != nil {
			fail("%v", err)
		}
		if *mode == "goaway" {
			sess.GoAway(uint32(*code), []byte(*debug))
		}
		sess.Close()
		say("ok")
	case "stall":
		// Writes on one stream the peer never reads, for -duration, and reports how much went through.
		s, err := sess.OpenStream()
		if err != nil {
			fail("open: %v", err)
		}
		var written int64
		go func() {
			chunk := make([]byte, 16*1024)
			for {
				n, err := s.Write(chunk)
				atomic.AddInt64(&written, int64(n))
				if err != nil {
					return
				}
			}
		}()
		time.Sleep(*duration)
		say("written %d", atomic.LoadInt64(&written))
		sess.Close()
	case "bulk":
		chunk := pattern(64*1024, 7)
		err := parallel(*streams, func(i int) error {
			s, err := sess.OpenStream()
			if err != nil {
				return err
			}
			for sent := 0; sent < *size; sent += len(chunk) {
				if _, err := s.Write(chunk); err != nil {
					return err
				}
			}
			s.CloseWrite()
			var b [8]byte
			if _, err := io.ReadFull(s, b[:]); err != nil {
				return err
			}
			s.Close()
			return nil
		})
		if err != nil {
			fail("%v", err)
		}
		secs := time.Since(start).Seconds()
		say("bulk bytes=%d seconds=%f MBps=%f cpu_ms=%f", int64(*streams)*int64(*size), secs, float64(*streams)*float64(*size)/secs/1e6, cpuMillis())
	case "rr":
		s, err := sess.OpenStream()
		if err != nil {
			fail("open: %v", err)
		}
		msg := pattern(*size, 3)
		buf := make([]byte, *size)
		for i := 0; i < *rounds/10; i++ { // warm-up
			s.Write(msg)
			io.ReadFull(s, buf)
		}
		start = time.Now()
		for i := 0; i < *rounds; i++ {
			if _, err := s.Write(msg); err != nil {
				fail("write: %v", err)
			}
			if _, err := io.ReadFull(s, buf); err != nil {
				fail("read: %v", err)
			}
		}
		secs := time.Since(start).Seconds()
		say("rr rounds=%d seconds=%f ops=%f", *rounds, secs, float64(*rounds)/secs)
		s.CloseWrite()
		sess.Close()
	default:
		fail("unknown client mode %s", *mode)
	}
	done := make(chan struct{})
	go func() {
		local, remote, dbg := sess.Wait()
		say("end local=%d remote=%d debug=%q", sess.Code(local), sess.Code(remote), string(dbg))
		close(done)
	}()
	sess.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second): // Go peers can hang on shutdown (B10)
	}
}
