// Command muxado-ngrok is the muxado test peer built on golang.ngrok.com/muxado/v2.
package main

import (
	"net"
	"time"

	"effect-wire/interop/internal/muxpeer"
	muxado "golang.ngrok.com/muxado/v2"
)

type stream struct{ muxado.Stream }

type session struct {
	sess  muxado.Session
	typed muxado.TypedStreamSession
	hb    *muxado.Heartbeat
	cb    func(time.Duration, bool)
	cfg   *muxado.HeartbeatConfig
}

func wrap(s muxado.Session) muxpeer.Session {
	out := &session{sess: s, typed: muxado.NewTypedStreamSession(s), cfg: muxado.NewHeartbeatConfig()}
	out.hb = muxado.NewHeartbeat(out.typed, func(d time.Duration, timeout bool) {
		if out.cb != nil {
			out.cb(d, timeout)
		}
	}, out.cfg)
	return out
}

func (s *session) OpenStream() (muxpeer.Stream, error) {
	st, err := s.sess.OpenStream()
	if err != nil {
		return nil, err
	}
	return stream{st}, nil
}

func (s *session) AcceptStream() (muxpeer.Stream, error) {
	st, err := s.sess.AcceptStream()
	if err != nil {
		return nil, err
	}
	return stream{st}, nil
}

func (s *session) OpenTypedStream(t uint32) (muxpeer.Stream, error) {
	st, err := s.typed.OpenTypedStream(muxado.StreamType(t))
	if err != nil {
		return nil, err
	}
	return stream{st}, nil
}

func (s *session) AcceptTypedStream() (muxpeer.Stream, uint32, error) {
	st, err := s.hb.AcceptTypedStream()
	if err != nil {
		return nil, 0, err
	}
	return stream{st}, uint32(st.StreamType()), nil
}

func (s *session) StartHeartbeat(interval, tolerance time.Duration, cb func(time.Duration, bool)) {
	s.cb = cb
	// The heartbeat copied its config at creation: make a new one with these durations.
	cfg := &muxado.HeartbeatConfig{Interval: interval, Tolerance: tolerance, Type: s.cfg.Type}
	s.hb = muxado.NewHeartbeat(s.typed, cb, cfg)
	s.hb.Start()
}

func (s *session) GoAway(code uint32, debug []byte) error {
	type goAway interface {
		GoAway(muxado.ErrorCode, []byte, time.Time) error
	}
	return s.sess.(goAway).GoAway(muxado.ErrorCode(code), debug, time.Now().Add(time.Second))
}

func (s *session) Close() error                 { return s.sess.Close() }
func (s *session) Wait() (error, error, []byte) { return s.sess.Wait() }
func (s *session) Code(err error) uint32 {
	if err == nil {
		return 0
	}
	code, _ := muxado.GetError(err)
	return uint32(code)
}

func main() {
	muxpeer.Main(muxpeer.Lib{
		Name:   "ngrok",
		Client: func(c net.Conn) muxpeer.Session { return wrap(muxado.Client(c, nil)) },
		Server: func(c net.Conn) muxpeer.Session { return wrap(muxado.Server(c, nil)) },
	})
}
