package clerktest

import (
	"encoding/json"
	"net/http"
)

// PayloadFault makes the Backend API handshake-payload endpoint misbehave.
// The zero PayloadFault is "no fault".
type PayloadFault struct {
	// Fault applies as on the JWKS endpoints, before the secret key is
	// checked: Status 429 or 500, Delay for a slow API, Hang, CloseConn,
	// Body for a malformed or oversized answer.
	Fault
	// RetryAfter, if set, is sent as the Retry-After header of every
	// answer while the fault is set, e.g. "7" with Status 429.
	RetryAfter string
}

// SetPayloadFault makes the handshake-payload endpoint misbehave as f
// describes, from the next request on. It panics if f.Status is not a valid
// HTTP status code.
func (i *Issuer) SetPayloadFault(f PayloadFault) {
	f.Fault = checkedFault("SetPayloadFault", f.Fault)
	i.hs.payloadFault.Store(&f)
}

// ClearPayloadFault restores normal answers.
func (i *Issuer) ClearPayloadFault() { i.hs.payloadFault.Store(nil) }

// payloadHandler serves GET HandshakePayloadPath?nonce=…, the fake of
// Clerk's Backend API handshake payload: {"directives": [...]} for a nonce
// the handshake endpoint handed out, 404 for any other.
func (i *Issuer) payloadHandler(w http.ResponseWriter, r *http.Request) {
	i.hs.payloadCalls.Add(1)
	if !i.enter() {
		return
	}
	defer i.inflight.Done()

	var fault *Fault
	retryAfter := ""
	if f := i.hs.payloadFault.Load(); f != nil {
		fault, retryAfter = &f.Fault, f.RetryAfter
	}
	if i.refuseBackendCall(w, r, http.MethodGet, fault, retryAfter) {
		return
	}
	nonce := r.URL.Query().Get("nonce")
	if nonce == "" {
		writeJSON(w, http.StatusBadRequest, errorBody("form_param_missing", "nonce must be included."))
		return
	}
	directives, ok := i.takeNonce(nonce)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody("resource_not_found", "Not found."))
		return
	}
	b, err := json.Marshal(struct {
		Directives []string `json:"directives"`
	}{directives})
	if err != nil {
		panic("clerktest: marshaling directives: " + err.Error()) // only strings inside
	}
	i.hs.payloadsServed.Add(1)
	writeJSON(w, http.StatusOK, b)
}
