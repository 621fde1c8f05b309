// Package xdsgo tests grpc-go's xDS client through `gnaming xds-agent`; this file runs the tests under the agent.
//
// grpc-go's own xDS client (google.golang.org/grpc/xds) calls xds:///SERVICE targets served by the
// agent, against greeter servers registered through the Go binding in the real etcd cluster that
// tests/harness/etcd_cluster.py starts around `go test`.
package xdsgo

// TestMain runs the test binary in one of three roles:
//   - without an xDS bootstrap in the environment it is the launcher: it starts the agent, runs the
//     same binary again with GRPC_XDS_BOOTSTRAP pointing at the agent's bootstrap (grpc-go reads the
//     bootstrap variables once, at package init, so os.Setenv would come too late), stops the agent
//     and checks that it exits cleanly;
//   - with the bootstrap it runs the tests;
//   - with childServerEnv set it is a greeter server the tests can SIGKILL (see backends_test.go).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers
)

const (
	// agentEnv names the gnaming binary; by default the release build of this repository.
	agentEnv = "GNAMING_AGENT"
	// agentReadyTimeout bounds the agent's start, including its first contact with nothing (it
	// connects to etcd lazily, per name asked for).
	agentReadyTimeout = 30 * time.Second
	// agentStopTimeout bounds the agent's clean exit after SIGTERM.
	agentStopTimeout = 10 * time.Second
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childServerEnv); spec != "" {
		serveAsChild(spec)
		return
	}
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" {
		os.Exit(launchUnderAgent())
	}
	os.Exit(m.Run())
}

// launchUnderAgent starts the agent on the harness's etcd, runs this binary with the agent's bootstrap
// and returns the exit code for the whole run.
func launchUnderAgent() int {
	endpoints := os.Getenv("GNAMING_TEST_ETCD_ENDPOINTS")
	if endpoints == "" {
		fmt.Fprintln(os.Stderr, "no etcd: run under `python3 tests/harness/etcd_cluster.py run -- go test ...` (make test-xds-go does)")
		return 2
	}
	dir, err := os.MkdirTemp("", "gnaming-xds-go-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)

	agent, err := startAgent(dir, endpoints)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s\n", agent.banner)

	tests := exec.Command(os.Args[0], os.Args[1:]...)
	tests.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+agent.bootstrap)
	tests.Stdout, tests.Stderr = os.Stdout, os.Stderr
	code := 0
	if err := tests.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "running the tests: %v\n", err)
			return 2
		}
		// Say how the test process ended: a signal or an exit without a test failure leaves no other trace.
		fmt.Fprintf(os.Stderr, "the test process ended: %v\n", exit)
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE {
			// Go forwards a SIGPIPE raised on a thread it did not start to the default action: a
			// library thread wrote to a closed connection (etcd going away) without SIGPIPE blocked.
			fmt.Fprintln(os.Stderr, "SIGPIPE on a non-Go thread: libgnaming's threads must block SIGPIPE so that a write to a closed connection fails with EPIPE")
		}
		code = max(exit.ExitCode(), 1)
	}
	if err := agent.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: xds-agent did not exit cleanly on SIGTERM: %v\n", err)
		code = max(code, 1)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- xds-agent log (last 4 KiB of %s)\n%s\n", agent.logPath, tail(agent.logPath, 4096))
	}
	return code
}

type agentProcess struct {
	cmd       *exec.Cmd
	bootstrap string
	banner    string
	logPath   string
	exited    chan error
}

// startAgent runs `gnaming xds-agent` on an ephemeral loopback port and waits for its ready line.
func startAgent(dir, endpoints string) (*agentProcess, error) {
	bin := os.Getenv(agentEnv)
	if bin == "" {
		bin = filepath.Join("..", "..", "..", "target", "release", "gnaming")
	}
	a := &agentProcess{bootstrap: filepath.Join(dir, "bootstrap.json"), logPath: filepath.Join(dir, "agent.log"), exited: make(chan error, 1)}
	logFile, err := os.Create(a.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	a.cmd = exec.Command(bin, "xds-agent", "--listen", "127.0.0.1:0", "--bootstrap-out", a.bootstrap, "--etcd", endpoints)
	a.cmd.Stderr = logFile
	// The agent must not outlive this launcher, whatever happens to it.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s xds-agent: %w", bin, err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, r)
	}()
	go func() { a.exited <- a.cmd.Wait() }()
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "xds-agent listening on ") {
			a.cmd.Process.Kill()
			<-a.exited
			return nil, fmt.Errorf("xds-agent's first line is %q, want \"xds-agent listening on ADDRESS bootstrap FILE\"; log:\n%s", line, tail(a.logPath, 4096))
		}
		a.banner = line
	case <-time.After(agentReadyTimeout):
		a.cmd.Process.Kill()
		<-a.exited
		return nil, fmt.Errorf("xds-agent not ready after %v; log:\n%s", agentReadyTimeout, tail(a.logPath, 4096))
	}
	if _, err := os.Stat(a.bootstrap); err != nil {
		a.stop()
		return nil, fmt.Errorf("xds-agent said it is ready but wrote no bootstrap: %w", err)
	}
	return a, nil
}

// stop sends SIGTERM and waits for exit status 0.
func (a *agentProcess) stop() error {
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-a.exited:
		return err
	case <-time.After(agentStopTimeout):
		a.cmd.Process.Kill()
		<-a.exited
		return fmt.Errorf("still running %v after SIGTERM (killed)", agentStopTimeout)
	}
}

// tail returns the last n bytes of the file at path, or why it cannot.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
