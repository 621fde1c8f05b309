package gnaming

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childServerEnv); spec != "" {
		serveAsChild(spec)
	}
	RegisterResolvers()
	RegisterBalancer()
	os.Exit(m.Run())
}
