// Package webhook verifies the webhooks Clerk sends through Svix and turns
// the events that matter to clerk_auth into actions: deny a session or a
// user, forget what the enrichment cache holds of a user or organization.
//
// # Verification
//
// A delivery carries the headers svix-id (msg_…), svix-timestamp (Unix
// seconds) and svix-signature (one or more space-separated "v1,<base64>",
// several while the secret rotates), over a JSON body. A Verifier checks, in
// order of cost, so that a flood without the secret spends at most one HMAC
// over at most Options.MaxBodySize bytes per request:
//
//  1. the body size, before reading past the cap;
//  2. that the three headers are there and well-formed;
//  3. the timestamp, within Options.Tolerance of the Verifier's clock;
//  4. the signature, with the official Svix library (its
//     VerifyIgnoringTimestamp: its own timestamp check reads time.Now with
//     a fixed tolerance, which the injected clock replaces);
//  5. that the body is a Clerk event;
//  6. for an event that acts, whether its svix-id was accepted before.
//
// Ids are remembered until their timestamp leaves the tolerance window,
// after which the delivery is refused as stale anyway: the set of ids is
// bounded by the rate of genuine events, since only verified ones enter it.
// A delivery of a remembered id is a duplicate: Svix retrying because our
// answer was lost, or a captured delivery sent again. Either way it was
// applied once already, so it is acknowledged (ErrDuplicate, answered 200)
// and applied no more. Forget drops an id whose event could not be carried
// out, so that Svix's retry is applied. Events that change nothing are
// acknowledged without being remembered.
//
// # Errors
//
// Every refusal, and a duplicate, wraps one of the Err values; Status maps
// it to the HTTP status to answer. No error holds the secret, a signature or the body.
package webhook
