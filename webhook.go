package clerkauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"github.com/caddyclerk/caddy-clerk-auth/internal/webhook"
)

func init() {
	caddy.RegisterModule(Webhook{})
	httpcaddyfile.RegisterHandlerDirective("clerk_webhook", parseWebhook)
}

// Webhook defaults and bounds.
const (
	// defaultDenyFor covers Clerk's session tokens (60s) and the JWT
	// templates and OAuth JWTs of a denied user of up to a day. M2M JWTs
	// have a machine subject, which no event denies.
	defaultDenyFor = 24 * time.Hour
	maxDenyFor     = 366 * 24 * time.Hour

	// webhookStoreTimeout bounds the wait for a denial to reach the
	// storage before the delivery is answered. Svix counts an answer after
	// 15s as a failure, network included; waiting for a round under way
	// and then writing must fit well inside, or a denial that was stored
	// would still be retried (harmlessly, as a duplicate) and show as
	// failed in the Dashboard.
	webhookStoreTimeout = 5 * time.Second

	// webhookRetryAfter is the Retry-After of a delivery refused with 503:
	// its denial or mark is not stored, or too many ids are remembered.
	// Svix keeps its own schedule (5s, 5m, 30m, ...); the header is for
	// another sender or a person reading the answer: about one background
	// write attempt later.
	webhookRetryAfter = "5"
)

// Webhook receives Clerk's webhook events (delivered by Svix) and acts on
// the ones that matter at the edge: the tokens of a revoked, ended or
// removed session, and of a deleted or banned user, issued up to the
// event, are refused by every clerk_auth handler of every Caddy that
// shares this one's storage, cached tokens included; a token issued after
// it (an unbanned user's next one) passes. A changed user, organization
// or membership drops its enrichment data here at once, and on the other
// Caddys of the storage within their denylist_sync. Deliveries must carry
// a valid Svix signature made with the endpoint's signing secret and a
// timestamp within 5 minutes; anything else is refused (400, 401 or 413)
// and changes nothing. A delivery that denies or drops is answered 200
// only once that is in the storage: if the storage fails, it is applied
// here at once but answered 503, so that Svix retries it until the storage
// takes it. A delivery whose svix-id was applied already (Svix retrying a
// lost answer, or a replay within the 5 minutes) is answered 200 and
// applied no more. Events of other types are acknowledged and ignored. It
// ends the route.
type Webhook struct {
	// The endpoint's signing secret (`whsec_...`, Clerk Dashboard →
	// Webhooks → the endpoint). Required; `{env.*}` placeholders work.
	// Never logged.
	SigningSecret string `json:"signing_secret"`

	// How long a denial is kept: as long as the longest-lived token
	// issued before the event can still verify. Default: 24h, 1m to 366
	// days. Session tokens live 60s; set it to your longest JWT template
	// or OAuth JWT lifetime if that is longer.
	DenyFor caddy.Duration `json:"deny_for,omitempty"`

	// How often this Caddy reads denials from the storage. Default: 5s.
	// The clerk_auth handlers of the same Caddy read them with their own
	// denylist_sync; this one's only matters if none shares its period.
	DenylistSync caddy.Duration `json:"denylist_sync,omitempty"`

	verifier   *webhook.Verifier
	cluster    *cluster
	clusterKey string
	denyFor    time.Duration
	logger     *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Webhook) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.clerk_webhook",
		New: func() caddy.Module { return new(Webhook) },
	}
}

// Provision checks the secret and attaches the storage's denylist.
func (wh *Webhook) Provision(ctx caddy.Context) error {
	wh.logger = ctx.Logger()
	secret, err := expand(caddy.NewReplacer(), "signing_secret", wh.SigningSecret)
	if err != nil {
		return fmt.Errorf("clerk_webhook: %w", err)
	}
	if secret == "" {
		return errors.New("clerk_webhook: signing_secret is required: the endpoint's whsec_... secret from the Clerk Dashboard (Webhooks)")
	}
	if !strings.HasPrefix(secret, "whsec_") {
		return errors.New("clerk_webhook: signing_secret must be the endpoint's whsec_... signing secret from the Clerk Dashboard, not another key")
	}
	wh.verifier, err = webhook.New(secret, webhook.Options{Now: timeNow})
	if err != nil {
		return fmt.Errorf("clerk_webhook: signing_secret: %v", err)
	}
	wh.denyFor = time.Duration(wh.DenyFor)
	if wh.denyFor == 0 {
		wh.denyFor = defaultDenyFor
	}
	if wh.denyFor < time.Minute || wh.denyFor > maxDenyFor {
		return fmt.Errorf("clerk_webhook: deny_for %s: use 1m to %s, the lifetime of the longest-lived token you accept", wh.denyFor, maxDenyFor)
	}
	every, err := denylistPeriod("clerk_webhook: ", wh.DenylistSync)
	if err != nil {
		return err
	}
	wh.cluster, wh.clusterKey, err = loadCluster(ctx, every)
	if err != nil {
		return fmt.Errorf("clerk_webhook: %w", err)
	}
	return nil
}

// Cleanup releases the denylist.
func (wh *Webhook) Cleanup() error {
	if wh.clusterKey == "" {
		return nil
	}
	_, err := clusters.Delete(wh.clusterKey)
	return err
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (wh *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		// Counted: a probe, or an endpoint URL given to something other
		// than Clerk, shows in the metrics.
		metrics.webhooks.WithLabelValues(webhookRefused, strconv.Itoa(http.StatusMethodNotAllowed)).Inc()
		w.Header().Set("Allow", "POST")
		return caddyhttp.Error(http.StatusMethodNotAllowed, nil)
	}
	ev, err := wh.verifier.Read(r)
	duplicate := errors.Is(err, webhook.ErrDuplicate)
	if err != nil && !duplicate {
		status := webhook.Status(err)
		metrics.webhooks.WithLabelValues(webhookRefused, strconv.Itoa(status)).Inc()
		// Debug: a flood of forged deliveries must not flood the log.
		wh.logger.Debug("webhook refused", zap.Int("status", status), zap.Error(err))
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", webhookRetryAfter)
		}
		return caddyhttp.Error(status, err)
	}
	if duplicate {
		return wh.acknowledgeDuplicate(w, r, ev)
	}
	// A denial refuses the tokens issued up to the event: Clerk mints none
	// for a revoked session or a banned user afterwards, so a later token
	// follows an unban and passes at once.
	until := timeNow().Add(wh.denyFor)
	var denials []denylist.Entry
	var forgets []string
	for _, a := range ev.Actions {
		switch a.Kind {
		case webhook.DenySession:
			denials = append(denials, denylist.Entry{Kind: denylist.Session, ID: a.ID, Until: until, IssuedBefore: ev.Occurred})
		case webhook.DenyUser:
			denials = append(denials, denylist.Entry{Kind: denylist.User, ID: a.ID, Until: until, IssuedBefore: ev.Occurred})
		case webhook.ForgetUser, webhook.ForgetOrganization:
			forgets = append(forgets, a.ID)
		}
	}
	// Applied here first, whatever the storage does: more denial is the
	// safe side, and dropped data is only fetched again.
	if len(denials) > 0 {
		wh.cluster.deny(denials...)
	}
	if len(forgets) > 0 {
		wh.cluster.forget(forgets...)
	}
	if ev.Shared() {
		if err := wh.store(r); err != nil {
			// Svix's retry must be applied, not answered as a duplicate.
			wh.verifier.Forget(ev.ID)
			return wh.refuseUnstored(w, ev, err)
		}
	}
	result := webhookIgnored
	if len(ev.Actions) > 0 {
		result = webhookApplied
		wh.logger.Info("webhook applied", zap.String("event", ev.Type), zap.String("svix_id", ev.ID),
			zap.Int("denials", len(denials)), zap.Int("forgets", len(forgets)))
	}
	return received(w, result)
}

// acknowledgeDuplicate answers a delivery applied before, applying nothing
// again. If it is shared, it is answered 200 only once this instance's
// denials and marks are stored, as the first delivery was: a duplicate
// that overtakes a first delivery still writing must not claim success
// for it.
func (wh *Webhook) acknowledgeDuplicate(w http.ResponseWriter, r *http.Request, ev webhook.Event) error {
	if ev.Shared() {
		if err := wh.store(r); err != nil {
			return wh.refuseUnstored(w, ev, err)
		}
	}
	// Debug: replays within the window must not flood the log.
	wh.logger.Debug("webhook already applied", zap.String("event", ev.Type), zap.String("svix_id", ev.ID))
	return received(w, webhookDuplicate)
}

// store waits, within webhookStoreTimeout, until this instance's denials
// and forget marks are in the storage.
func (wh *Webhook) store(r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), webhookStoreTimeout)
	defer cancel()
	return wh.cluster.sync.Flush(ctx)
}

// refuseUnstored answers 503 to a delivery applied here but not stored, so
// that Svix delivers it again.
func (wh *Webhook) refuseUnstored(w http.ResponseWriter, ev webhook.Event, err error) error {
	metrics.webhooks.WithLabelValues(webhookUnstored, strconv.Itoa(http.StatusServiceUnavailable)).Inc()
	wh.logger.Warn("webhook applied here but not stored: answered 503 so that Clerk sends it again",
		zap.String("event", ev.Type), zap.String("svix_id", ev.ID), zap.Error(err))
	w.Header().Set("Retry-After", webhookRetryAfter)
	return caddyhttp.Error(http.StatusServiceUnavailable, err)
}

// received acknowledges a delivery, counted under result.
func received(w http.ResponseWriter, result string) error {
	metrics.webhooks.WithLabelValues(result, "200").Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(`{"received":true}`))
	return err
}

// forgetEnrichment drops what every Backend API client of this process
// caches of a user or organization, counted under source.
func forgetEnrichment(id, source string) {
	metrics.enrichForgets.WithLabelValues(source).Inc()
	apiClients.Range(func(_, val any) bool {
		if c, ok := val.(sharedClient); ok {
			c.Invalidate(id)
		}
		return true
	})
}

// denylistPeriod checks a denylist_sync setting.
func denylistPeriod(module string, d caddy.Duration) (time.Duration, error) {
	every := time.Duration(d)
	if every == 0 {
		every = defaultDenylistSync
	}
	if every < time.Second || every > 5*time.Minute {
		return 0, fmt.Errorf("%sdenylist_sync %s: use 1s to 5m; it is the most a revocation takes to reach every Caddy sharing the storage", module, every)
	}
	return every, nil
}

// UnmarshalCaddyfile sets up the handler. Syntax:
//
//	clerk_webhook [<matcher>] {
//		signing_secret <whsec_...>
//		deny_for       <duration>
//		denylist_sync  <duration>
//	}
func (wh *Webhook) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "signing_secret":
			err = secretValue(d, &wh.SigningSecret)
		case "deny_for":
			err = parseDuration(d, &wh.DenyFor)
		case "denylist_sync":
			err = parseDuration(d, &wh.DenylistSync)
		default:
			return d.Errf("unrecognized clerk_webhook subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseWebhook(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var wh Webhook
	err := wh.UnmarshalCaddyfile(h.Dispenser)
	return &wh, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Webhook)(nil)
	_ caddy.CleanerUpper          = (*Webhook)(nil)
	_ caddyhttp.MiddlewareHandler = (*Webhook)(nil)
	_ caddyfile.Unmarshaler       = (*Webhook)(nil)
)
