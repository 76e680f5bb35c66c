// Package denylist holds the sessions and users that clerk_auth refuses
// although their tokens verify: sessions that Clerk revoked or ended, users
// it deleted or banned. It is consulted on every request, verified-token
// cache hits included, so a look-up is O(1), allocates nothing and never
// waits for a writer.
//
// # What a denial refuses
//
// Clerk mints no token for a session it revoked or a user it banned or
// deleted, so a denial refuses the tokens issued at or before the event
// that caused it (Entry.IssuedBefore, plus SkewMargin for the distance
// between Clerk's clocks). A token issued later was minted after an unban,
// or for another session, and passes at once. A token without iat, and
// every token of an entry without IssuedBefore, is refused. Two denials of
// one id join into the later expiry and the later IssuedBefore: both only
// grow, so lists that exchange entries agree whatever the order, and a
// late copy of an old event cannot refuse what came after it.
//
// # Expiry
//
// A denial only matters while a token it affects can still verify, so every
// entry carries the time after which it is inert: the caller passes the
// expiry of the longest-lived token the denial can affect (the longest
// token lifetime it accepts, from the moment of the revocation). Look-ups
// ignore entries past it; writes drop them, so the list empties itself
// without a timer.
//
// # Concurrency
//
// Entries are spread over shards by a seeded hash; each shard is an
// immutable map behind an atomic pointer. A look-up is one atomic load and
// one map read. A write copies the shards it touches (about 1/256th of the
// list each) and swaps them in, under a mutex that only writers take.
// Writes are rare (a webhook, a periodic merge from storage) and batched
// per shard, so their cost, O(entries/256) per touched shard, buys lock-free
// reads.
//
// # Memory bound
//
// Options.MaxEntries caps the list. A denial is never refused: when an Add
// would pass the cap, expired entries go first, then the entries that
// expire soonest, the ones protecting the shortest remaining window, in
// one batch so that the cost is amortized. Every eviction is counted
// (Stats.Evicted) so the caller can log and alert; with the default cap it
// takes about a million live revocations, far more than an instance sees
// in a token lifetime.
package denylist
