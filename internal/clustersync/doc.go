// Package clustersync shares the denylist among the Caddy instances that
// share a storage: a Caddy cluster, as Caddy defines it. A session that
// Clerk revokes is announced by a webhook to one instance; through the
// storage, every instance denies it within one Options.SyncEvery.
//
// # Protocol
//
// Each instance owns one document, <Prefix>/<instance id>.json, holding the
// denials it learned itself (from webhooks) with their expiries. Nobody
// else writes it, so no lock is taken: the same pattern as caddy-ratelimit's
// distributed mode. An instance writes its document as soon as it learns a
// denial, and every SyncEvery lists the prefix, loads every document and
// adds what it finds to its denylist. A denial has two bounds, when it
// ends and the latest token issue time it refuses, and a merge keeps the
// later of each: denials only ever grow until they expire, so a merge is a
// union and needs no ordering between instances. The document's format is
// described on the document type.
//
// The same documents carry forget marks (Syncer.Forget): the ids of users
// and organizations whose data changed in Clerk, with the second each was
// forgotten. Every other instance calls Options.OnForget once per mark it
// has not applied yet, within one SyncEvery, so that what it cached of the
// id is fetched again. A mark is kept for Options.ForgetRetention, longer
// than any such cache lives, then dropped.
//
// A starting instance loads every document before Start returns and Ready
// closes, so a restarted instance denies at once what the cluster denied.
//
// # Housekeeping
//
// A document whose denials have all ended and whose marks have all lapsed
// is deleted by whichever instance reads it: dead instances leave nothing
// behind for longer than their entries last. An instance whose own document was deleted or
// changed under it (a prune that raced its write, an operator) writes it
// again in its next round.
//
// # Failure
//
// Look-ups read the denylist in memory and never wait for storage. A
// storage that is slow (each round is bounded by Options.StorageTimeout),
// down, or holds a corrupt document keeps the last good state: what was
// merged stays merged, a corrupt document is skipped while the others are
// merged, and the next round tries again. Failures are counted in Stats,
// for metrics, and logged when they start and end, not every round.
package clustersync
