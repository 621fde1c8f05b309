package gnaming

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	RegisterResolvers()
	RegisterBalancer()
	os.Exit(m.Run())
}
