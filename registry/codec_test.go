package registry

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

func TestPIDCodec(t *testing.T) {
	for _, tc := range []struct {
		rule string
		in   []byte
		want *actor.PID
	}{
		{"round trip", encodePID(actor.NewPID("127.0.0.1:8090", "$1/child")), actor.NewPID("127.0.0.1:8090", "$1/child")},
		{"empty value", nil, nil},
		{"unknown format", []byte("\x02a\x00b"), nil},
		{"no separator", []byte("\x01abc"), nil},
		{"empty address", []byte("\x01\x00id"), nil},
		{"empty id", []byte("\x01addr\x00"), nil},
		{"zero byte in id", []byte("\x01addr\x00i\x00d"), nil},
	} {
		got := decodePID(tc.in)
		if (got == nil) != (tc.want == nil) || (got != nil && !got.Equal(tc.want)) {
			t.Errorf("%s: decodePID(%q) = %v, want %v", tc.rule, tc.in, got, tc.want)
		}
	}
}

// FuzzDecodePID checks that any store value decodes without panicking,
// and that what decodes encodes back to the same bytes.
func FuzzDecodePID(f *testing.F) {
	f.Add(encodePID(actor.NewPID("127.0.0.1:1", "$a")))
	f.Add([]byte("\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, v []byte) {
		pid := decodePID(v)
		if pid == nil {
			return
		}
		if got := encodePID(pid); string(got) != string(v) {
			t.Fatalf("decode(%q) = %v encodes to %q", v, pid, got)
		}
	})
}
