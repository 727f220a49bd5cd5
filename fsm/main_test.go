package fsm_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/protoactor-locker/locker/internal/registrytest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, registrytest.LeakOptions()...)
}
