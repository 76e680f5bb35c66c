package clerkauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
	"github.com/caddyclerk/caddy-clerk-auth/internal/clustersync"
	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
)

// Every Caddy that shares a storage is one cluster, as Caddy defines it:
// the sessions and users that Clerk revoked, announced by a webhook to any
// one instance, are denied by all of them through the storage, and the
// users and organizations that changed are dropped from all their
// enrichment caches.

// clusters holds one denylist and its Syncer per storage and sync period,
// shared by every clerk_auth and clerk_webhook handler and kept across
// reloads.
var clusters = caddy.NewUsagePool()

// clusterClock is the clock of clusters created from now on; nil is the
// real one. Tests move it to expire denials and run sync rounds.
var clusterClock clustersync.Clock

// defaultDenylistSync is how often the storage is read for denials other
// instances learned: the most a revocation takes to reach every instance.
const defaultDenylistSync = clustersync.DefaultSyncEvery

// clusterStartTimeout bounds the first read of the storage at provision
// time, so that a hung storage delays a start by this much at most.
const clusterStartTimeout = 5 * time.Second

// cluster is a storage's shared denylist.
type cluster struct {
	storage string // storageKey of the storage it shares
	list    *denylist.List
	sync    *clustersync.Syncer
}

// deny adds entries through c, which publishes them, and to every other
// denylist of the same storage in this process (handlers with another
// denylist_sync), so that none of them waits for its next read.
func (c *cluster) deny(entries ...denylist.Entry) {
	c.sync.Deny(entries...)
	clusters.Range(func(_, val any) bool {
		if o, ok := val.(*cluster); ok && o != c && o.storage == c.storage {
			o.list.Add(entries...)
		}
		return true
	})
}

// forget drops what this process cached of ids and has c publish the
// marks, so that every other instance drops what it cached.
func (c *cluster) forget(ids ...string) {
	for _, id := range ids {
		forgetEnrichment(id, forgetFromWebhook)
	}
	c.sync.Forget(ids...)
}

func (c *cluster) Destruct() error {
	c.sync.Stop()
	return nil
}

// loadCluster returns the cluster of ctx's storage and the pool key that
// Cleanup must release. A new one reads every instance's denials before it
// is used, so a restarted Caddy denies at once what the cluster denied.
func loadCluster(ctx caddy.Context, every time.Duration) (*cluster, string, error) {
	storage := ctx.Storage()
	if storage == nil {
		return nil, "", fmt.Errorf("denylist: Caddy has no storage configured")
	}
	skey := storageKey(storage)
	key := fmt.Sprintf("%s|%s", skey, every)
	logger := ctx.Logger().Named("denylist")
	val, _, err := clusters.LoadOrNew(key, func() (caddy.Destructor, error) {
		opts := denylist.Options{}
		if clusterClock != nil {
			opts.Now = clusterClock.Now
		}
		list := denylist.New(opts)
		s, err := clustersync.New(storage, list, clustersync.Options{
			SyncEvery:  every,
			InstanceID: processInstance + "-" + every.String(),
			Clock:      clusterClock,
			// Past twice the cache's lifetime, every instance has fetched
			// anything it cached before the change again anyway.
			ForgetRetention: 2 * clerkapi.DefaultEnrichTTL,
			OnForget:        func(id string) { forgetEnrichment(id, forgetFromStorage) },
		}, logger)
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
		defer cancel()
		if err := s.Start(sctx); err != nil {
			// Not fatal: later rounds keep trying, and meanwhile the
			// instance denies what it learns itself.
			logger.Error("the shared denylist could not be read yet; retrying", zap.Error(err))
		}
		return &cluster{storage: skey, list: list, sync: s}, nil
	})
	if err != nil {
		return nil, "", err
	}
	return val.(*cluster), key, nil
}

// processInstance names this process's denylist documents, one per sync
// period, so that a config reload takes over its predecessor's document.
var processInstance = strings.ToLower(rand.Text())

// revocation is the refusal of a verified id that a Clerk webhook denied,
// or nil. The handler and the token doctor both ask it, so that they
// agree.
func (h *Handler) revocation(id *Identity, now time.Time) *VerifyError {
	reason := ReasonSessionRevoked
	switch h.denied.Check(id.SessionID, id.Subject, id.IssuedAt, now) {
	case denylist.None:
		return nil
	case denylist.User:
		reason = ReasonUserRevoked
	}
	return &VerifyError{Reason: reason, Err: errors.New("revoked in Clerk (webhook)")}
}

// noDenials stands in for the shared denylist until Provision attaches it,
// so a handler built without Caddy's storage (the token doctor, tests)
// still checks one.
var noDenials = denylist.New(denylist.Options{})

// provisionDenylist checks denylist_sync.
func (h *Handler) provisionDenylist(*caddy.Replacer) error {
	every, err := denylistPeriod("", h.DenylistSync)
	h.denied, h.denylistSync = noDenials, every
	return err
}

// attachCluster gives the handler its storage's shared denylist.
func (h *Handler) attachCluster(ctx caddy.Context) error {
	c, key, err := loadCluster(ctx, h.denylistSync)
	if err != nil {
		return err
	}
	h.denied, h.clusterKey = c.list, key
	return nil
}
