// Package assertion keeps the keys that sign identity assertions: compact
// JWTs in which clerk_auth states, for every authenticated request, the
// identity it verified, so that an upstream can verify the header instead of
// trusting the network (the X-Pomerium-Jwt-Assertion pattern). Upstreams
// verify them against the JWKS that the KeyRing publishes.
//
// # Algorithm
//
// Assertions are signed with ES256 (ECDSA on P-256 with SHA-256). Every
// mainstream JWT library verifies it out of the box (PyJWT with
// cryptography, jose, jwx, the Java and .NET stacks), and it is what Google
// IAP, AWS ALB and Pomerium sign their identity headers with, so upstream
// teams have seen it before. EdDSA would be as fast and smaller, but some of
// those stacks still lack or gate it. RSA verifies everywhere too, but its
// signatures are four times longer and signing is far slower, which matters
// when every cache miss mints one.
//
// # Storage and clustering
//
// The keys live in a certmagic.Storage (Caddy's ctx.Storage()) as one JSON
// document under Options.Prefix, private keys in PKCS#8 PEM. Every KeyRing
// that shares the storage signs with the same key and publishes the same
// JWKS: that is a Caddy cluster as Caddy defines it. Whoever finds work due
// (the first key, the next key, pruning) does it under the storage's lock
// and re-reads the document once it holds the lock, so instances that start
// or rotate at once make one key.
//
// # Rotation
//
// A key signs for Options.RotateEvery. Its successor is generated and
// published long before it starts signing (at least Options.Overlap plus two
// refresh periods, and normally half a signing period), so that every
// instance has it and upstream JWKS caches have had time to learn it before
// any assertion carries it. A key stays published for Options.Overlap after
// it stops signing, so every assertion it signed expires before it leaves
// the JWKS; then it is pruned from storage. Only when no key at all covers
// the present (a first start, or a cluster that was down for longer than its
// keys last) does a key sign from the moment it is made.
//
// # Failure
//
// Sign and JWKS only read memory. The KeyRing re-reads storage in the
// background every Options.RefreshEvery; a storage that is slow, down or
// holds a corrupt document leaves the last good keys in place and is
// reported (by Refresh and in the log). Only a KeyRing that holds no key
// for the present refuses to sign: its storage was never usable, or has not
// been for longer than the schedule reached ahead.
//
// Deleting the document from storage revokes every key at once: the next
// refresh of each instance finds no keys and the first to hold the lock
// makes a new one. Assertions signed with the old keys stop verifying as
// upstreams refetch the JWKS.
//
// Private keys appear in no error, log line, or formatting of any type of
// this package.
package assertion
