package registry

import (
	"bytes"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
)

// pidFormat is the first byte of an encoded PID: the version of the
// encoding, so that another one can follow.
const pidFormat = 1

// encodePID returns the store value of pid: the byte 1, the address, a
// zero byte, the id. Addresses ("host:port") hold no zero byte.
func encodePID(pid *actor.PID) []byte {
	b := make([]byte, 0, 2+len(pid.Address)+len(pid.Id))
	b = append(b, pidFormat)
	b = append(b, pid.Address...)
	b = append(b, 0)
	return append(b, pid.Id...)
}

// decodePID parses a value made by encodePID; nil if it is not one.
func decodePID(v []byte) *actor.PID {
	if len(v) < 3 || v[0] != pidFormat {
		return nil
	}
	i := bytes.IndexByte(v[1:], 0)
	if i <= 0 || i+2 >= len(v) {
		return nil
	}
	addr, id := string(v[1:1+i]), string(v[2+i:])
	if strings.IndexByte(id, 0) >= 0 {
		return nil
	}
	return actor.NewPID(addr, id)
}
