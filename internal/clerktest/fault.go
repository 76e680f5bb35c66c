package clerktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault makes both JWKS endpoints misbehave. The zero Fault is "no fault".
// Fields combine in this order: Delay, then Hang or CloseConn, then the
// response (status from Status, 200 if zero; body from Body, else an
// oversized key set if Oversize, else a small error body if Status is set,
// else the real key set). A Fault applies before the Backend API secret is
// checked, as a broken network or server would.
type Fault struct {
	// Delay is waited before answering. The wait ends early, without an
	// answer, if the client gives up or the Issuer is closed.
	Delay time.Duration
	// Status, if non-zero, is the HTTP status answered. It must be a valid
	// status code (100-999).
	Status int
	// Body, if non-nil, is served instead of the real key set: garbage,
	// "{}", `{"keys":[]}`, a key set for other keys, and so on.
	Body []byte
	// Oversize serves a syntactically valid key set, containing the real
	// keys, that is larger than 1 MiB: a verifier that does not bound what
	// it reads would accept it.
	Oversize bool
	// Hang blocks until the client gives up or the Issuer is closed, and
	// never answers.
	Hang bool
	// CloseConn drops the connection without answering, as a crashing
	// server or a reset by a middlebox would.
	CloseConn bool
}

// SetFault makes both JWKS endpoints misbehave as f describes, from the next
// request on. It panics if f.Status is not a valid HTTP status code.
func (i *Issuer) SetFault(f Fault) {
	f = checkedFault("SetFault", f)
	i.fault.Store(&f)
}

// checkedFault panics, naming the setter who, if f.Status is not a valid
// HTTP status code, and returns f with its own copy of Body.
func checkedFault(who string, f Fault) Fault {
	if f.Status != 0 && (f.Status < 100 || f.Status > 999) {
		panic(fmt.Sprintf("clerktest: %s: invalid HTTP status %d", who, f.Status))
	}
	if f.Body != nil {
		// Own a copy so the caller may reuse its slice while we serve.
		f.Body = append([]byte{}, f.Body...)
	}
	return f
}

// ClearFault restores normal answers on both JWKS endpoints.
func (i *Issuer) ClearFault() { i.fault.Store(nil) }

// serveFault applies f and reports whether it answered (or deliberately did
// not answer) the request; false means the real key set should be served.
func (i *Issuer) serveFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-i.done:
			return true
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-i.done:
		}
		return true
	}
	if f.CloseConn {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return true
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case f.Body != nil:
		writeJSON(w, status, f.Body)
	case f.Oversize:
		writeJSON(w, status, i.oversizeJWKS())
	case f.Status != 0:
		writeJSON(w, status, errorBody("clerktest_fault", fmt.Sprintf("clerktest: injected HTTP %d", f.Status)))
	default:
		return false
	}
	return true
}

// oversizeJWKS is the real key set padded past 1 MiB with an extra member,
// which JSON parsers must skip, so that only a size limit can reject it.
func (i *Issuer) oversizeJWKS() []byte {
	b, err := json.Marshal(struct {
		Keys    []jwk  `json:"keys"`
		Padding string `json:"x_clerktest_padding"`
	}{i.jwks(), strings.Repeat("x", 1<<20)})
	if err != nil {
		panic("clerktest: marshaling oversize JWKS: " + err.Error()) // only strings inside
	}
	return b
}
