package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// The headers of a Svix delivery, as Clerk's verifyWebhook reads them.
const (
	HeaderID        = "svix-id"
	HeaderTimestamp = "svix-timestamp"
	HeaderSignature = "svix-signature"
)

// Defaults of Options.
const (
	// DefaultTolerance is Svix's own: a delivery signed more than five
	// minutes before or after the Verifier's clock is refused.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodySize is far above any Clerk event (a user with many
	// memberships is a few tens of KiB) and bounds the HMAC a forged
	// delivery costs.
	DefaultMaxBodySize = 256 << 10
	// DefaultMaxRemembered bounds the svix-ids remembered against replay:
	// at most two tolerance windows of events that act, i.e. about 80 per
	// second for ten minutes.
	DefaultMaxRemembered = 50_000
)

// Bounds on the headers, far above what Svix sends (an id of about 30
// bytes, a signature of 47 per secret), so that a forged delivery cannot
// make the Verifier remember or split large strings.
const (
	maxIDHeader        = 256
	maxSignatureHeader = 4096
)

// secretPrefix starts every Svix signing secret, as the Clerk Dashboard
// shows it.
const secretPrefix = "whsec_"

// Options tune a Verifier. A zero field means its default.
type Options struct {
	// Tolerance is how far a delivery's timestamp may be from the clock.
	Tolerance time.Duration
	// MaxBodySize caps the body, in bytes.
	MaxBodySize int64
	// MaxRemembered caps the svix-ids remembered against replay.
	MaxRemembered int
	// Now, if set, replaces time.Now: tests move time without sleeping.
	Now func() time.Time
}

// Verifier checks Svix deliveries against one signing secret. Its methods
// are safe for concurrent use.
type Verifier struct {
	wh     *svix.Webhook
	opts   Options
	replay *replaySet
}

// New returns a Verifier for secret, "whsec_" and base64 as the Clerk
// Dashboard shows it. The error never holds the secret.
func New(secret string, opts Options) (*Verifier, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return nil, errors.New("webhook signing secret: not a Svix secret (whsec_…)")
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil || len(strings.TrimPrefix(secret, secretPrefix)) == 0 {
		return nil, errors.New("webhook signing secret: whsec_ is not followed by base64")
	}
	if opts.Tolerance < 0 || opts.MaxBodySize < 0 || opts.MaxRemembered < 0 {
		return nil, errors.New("webhook options: negative values")
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	if opts.MaxBodySize == 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	if opts.MaxRemembered == 0 {
		opts.MaxRemembered = DefaultMaxRemembered
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{wh: wh, opts: opts, replay: newReplaySet(opts.MaxRemembered)}, nil
}

// Read reads the body of r, refusing it unread if its Content-Length is
// over the cap and reading at most one byte past the cap otherwise, and
// verifies it with Verify. The caller checks the method and closes the
// body, as for any handler.
func (v *Verifier) Read(r *http.Request) (Event, error) {
	if r.ContentLength > v.opts.MaxBodySize {
		return Event{}, fmt.Errorf("%w: Content-Length %d, the cap is %d", ErrTooLarge, r.ContentLength, v.opts.MaxBodySize)
	}
	// Sized once from Content-Length (already bounded): a body of 256 KiB
	// read in doubling steps would allocate twice that.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, v.opts.MaxBodySize+1)); err != nil {
		return Event{}, fmt.Errorf("%w: reading the body: %v", ErrMalformed, err)
	}
	return v.Verify(r.Header, buf.Bytes())
}

// Verify checks one delivery: its body size, headers, timestamp and
// signature; then decodes the event and, if it acts, remembers its id. An
// event that does not act is returned with no Actions and no error. An
// acting event whose id was accepted before, and neither expired nor
// forgotten since, is returned with ErrDuplicate: it was applied already.
// Of concurrent deliveries of one id, exactly one gets no error.
func (v *Verifier) Verify(h http.Header, body []byte) (Event, error) {
	if int64(len(body)) > v.opts.MaxBodySize {
		return Event{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, v.opts.MaxBodySize)
	}
	id, ts, sig, err := deliveryHeaders(h)
	if err != nil {
		return Event{}, err
	}
	now := v.opts.Now()
	if d := now.Sub(ts); d > v.opts.Tolerance || -d > v.opts.Tolerance {
		return Event{}, fmt.Errorf("%w: the clock is %v past it, the tolerance %v", ErrStale, d.Round(time.Second), v.opts.Tolerance)
	}
	// Only the svix-* headers, trimmed as Clerk trims them, reach the
	// library: it would fall back to webhook-* ones.
	signed := http.Header{
		http.CanonicalHeaderKey(HeaderID):        {id},
		http.CanonicalHeaderKey(HeaderTimestamp): {strconv.FormatInt(ts.Unix(), 10)},
		http.CanonicalHeaderKey(HeaderSignature): {sig},
	}
	if err := v.wh.VerifyIgnoringTimestamp(body, signed); err != nil {
		return Event{}, ErrSignature // the library's error says no more
	}
	ev, err := decodeEvent(body)
	if err != nil {
		return Event{}, err
	}
	ev.ID, ev.Timestamp, ev.Occurred = id, ts, occurredAt(ev.Occurred, ts)
	if len(ev.Actions) == 0 {
		return ev, nil
	}
	// Remembered past the end of the window: the second of ts is
	// truncated, and a delivery at exactly ts+Tolerance still passes.
	expiry := ts.Add(v.opts.Tolerance + time.Second).UnixNano()
	switch err := v.replay.add(id, expiry, now.UnixNano()); {
	case errors.Is(err, ErrDuplicate):
		return ev, fmt.Errorf("%w: %s", err, id)
	case err != nil:
		return Event{}, fmt.Errorf("%w: %s", err, id)
	}
	return ev, nil
}

// occurredAt is when an event happened: its payload's timestamp, signed
// by Clerk and the same on every retry, so that a late retry dates its
// denial as the first delivery did. It is at most the svix-timestamp: a
// denial must not reach forward to tokens minted after its delivery was
// signed. Without a payload timestamp it is the svix-timestamp, which is
// later than the event and only widens a denial to tokens Clerk minted
// between the event and the delivery.
func occurredAt(payload, signed time.Time) time.Time {
	if payload.IsZero() || payload.After(signed) {
		return signed
	}
	return payload
}

// Forget drops a remembered id, so that the next delivery of it is
// accepted and applied again: for a caller that could not complete what
// the event asked (its denials not stored) and refused the delivery, so
// that Svix's retry is not answered as a duplicate.
func (v *Verifier) Forget(id string) {
	v.replay.forget(id)
}

// deliveryHeaders reads the three svix-* headers. The library signs the
// number it parsed from svix-timestamp, not the header's text, so only the
// canonical spelling is accepted: "+17…" or "017…" are not Svix's.
func deliveryHeaders(h http.Header) (id string, ts time.Time, sig string, err error) {
	id = strings.TrimSpace(h.Get(HeaderID))
	rawTS := strings.TrimSpace(h.Get(HeaderTimestamp))
	sig = strings.TrimSpace(h.Get(HeaderSignature))
	switch {
	case id == "" || rawTS == "" || sig == "":
		return "", time.Time{}, "", fmt.Errorf("%w: %s, %s and %s are required", ErrMalformed, HeaderID, HeaderTimestamp, HeaderSignature)
	case len(id) > maxIDHeader || !printable(id):
		return "", time.Time{}, "", fmt.Errorf("%w: %s is not an id", ErrMalformed, HeaderID)
	case len(sig) > maxSignatureHeader:
		return "", time.Time{}, "", fmt.Errorf("%w: %s over %d bytes", ErrMalformed, HeaderSignature, maxSignatureHeader)
	}
	secs, perr := strconv.ParseInt(rawTS, 10, 64)
	if perr != nil || strconv.FormatInt(secs, 10) != rawTS {
		return "", time.Time{}, "", fmt.Errorf("%w: %s is not Unix seconds", ErrMalformed, HeaderTimestamp)
	}
	return id, time.Unix(secs, 0), sig, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
