package examples

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// requireRuntimes is set in CI (CLERK_CONFORMANCE=require, after .ci/run
// installed Python, PyJWT and the Node example's packages): there a missing
// runtime fails the test instead of skipping it, so CI cannot pass by
// testing nothing.
var requireRuntimes = os.Getenv("CLERK_CONFORMANCE") == "require"

// need skips t, or fails it where runtimes are required, when find could
// not find what an example runs on; otherwise it returns what find found.
func need(t *testing.T, find func() (string, error)) string {
	t.Helper()
	path, err := find()
	if err == nil {
		return path
	}
	if requireRuntimes {
		t.Fatalf("%v (CLERK_CONFORMANCE=require; .ci/run installs it)", err)
	}
	t.Skip(err)
	return ""
}

// python3 runs the Python example in header mode: any python3 does.
var python3 = sync.OnceValues(func() (string, error) {
	return exec.LookPath("python3")
})

// pythonJWT is a python3 that can import PyJWT and cryptography, for the
// Python example's assertion mode. The one on PATH may be a virtualenv or
// pyenv without them while the system one (Debian's python3-jwt) has them.
var pythonJWT = sync.OnceValues(func() (string, error) {
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import jwt, cryptography").Run() == nil {
			return path, nil
		}
	}
	return "", errors.New("no python3 that can import jwt and cryptography (apt-get install python3-jwt python3-cryptography)")
})

// node runs the Node example in header mode.
var node = sync.OnceValues(func() (string, error) {
	return exec.LookPath("node")
})

// nodeJose is a node that can import the Node example's pinned jose, for
// its assertion mode.
var nodeJose = sync.OnceValues(func() (string, error) {
	path, err := node()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(path, "--input-type=module", "-e", "await import('jose')")
	cmd.Dir = "node"
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("the Node example's jose is not installed (npm ci --prefix examples/node): %v\n%s", err, out)
	}
	return path, nil
})

// assertionApp is an example upstream in assertion mode.
type assertionApp struct {
	name    string
	runtime func() (string, error) // nil: command[0] is a built binary
	command []string               // after the runtime, run from this directory
	// coolsDownAfterAnyFetch: an unknown kid makes the app refetch only
	// once its copy of the key set is 30 s old (jose's cooldownDuration),
	// where the others allow one refetch per 30 s whatever their copy's age.
	coolsDownAfterAnyFetch bool
}

// assertionApps are the three example upstreams; a function, since the Go
// one's binary is built by TestMain.
func assertionApps() []assertionApp {
	return []assertionApp{
		{name: "go", command: []string{bin.goExample}},
		{name: "python", runtime: pythonJWT, command: []string{"python/app.py"}},
		{name: "node", runtime: nodeJose, command: []string{"node/server.js"}, coolsDownAfterAnyFetch: true},
	}
}

// argv is the app's command line, its runtime first; t is skipped, or
// fails, when the runtime is missing (see need).
func (a assertionApp) argv(t *testing.T) []string {
	t.Helper()
	if a.runtime == nil {
		return a.command
	}
	return append([]string{need(t, a.runtime)}, a.command...)
}

// startAssertionApp runs the app argv in assertion mode with these flags
// until the test ends, and returns its URL.
func startAssertionApp(t *testing.T, argv []string, jwksURL, audience, issuer string) string {
	t.Helper()
	args := append(append([]string{}, argv...), "--port", "0",
		"--jwks-url", jwksURL, "--audience", audience, "--issuer", issuer)
	return "http://" + startProc(t, nil, args...).waitFor(t, listeningRE)
}
