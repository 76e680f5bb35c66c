package handshake

// Clerk's reason strings (AuthErrorReason in @clerk/backend), so that logs,
// metrics and debug headers read the same as Clerk's docs and SDKs.
const (
	ReasonDevBrowserSync           = "dev-browser-sync"
	ReasonDevBrowserMissing        = "dev-browser-missing"
	ReasonPrimaryRespondsToSyncing = "primary-responds-to-syncing"
	ReasonCrossOriginSync          = "primary-domain-cross-origin-sync"
	ReasonTokenAndUATMissing       = "session-token-and-uat-missing"
	ReasonTokenWithoutUAT          = "session-token-but-no-client-uat"
	ReasonUATWithoutToken          = "client-uat-but-no-session-token"
	ReasonIATBeforeUAT             = "session-token-iat-before-client-uat"
	ReasonSessionTokenNBF          = "session-token-nbf"
	ReasonSessionTokenIATInFuture  = "session-token-iat-in-the-future"
	ReasonSessionTokenMissing      = "session-token-missing"
	ReasonTypeMismatch             = "token-type-mismatch"
	ReasonTokenInvalid             = "token-invalid"
	ReasonInvalidAlgorithm         = "token-invalid-algorithm"
	ReasonInvalidSignature         = "token-invalid-signature"
)

// The verify callback's reasons that Clerk answers with a handshake rather
// than a sign-out: a fresh token from the Frontend API cures them.
const (
	VerifyExpired     = "token-expired"
	VerifyNotActive   = "token-not-active-yet"
	VerifyIATInFuture = "token-iat-in-the-future"
)

// Why Clerk did not refresh an expired token through __refresh, the tail of
// session-token-expired-refresh-<cause>.
const (
	refreshNonGet   = "non-eligible-non-get"
	refreshNoCookie = "non-eligible-no-refresh-cookie"
	// The edge never calls the Backend API to refresh: with a __refresh
	// cookie it reports what Clerk's SDK reports when it has no API client.
	refreshNotAtEdge = "missing-api-client"
)

// expiredReason is Clerk's handshake reason for an expired session token,
// given why the refresh through __refresh was not done.
func expiredReason(refreshCause string) string {
	return "session-token-expired-refresh-" + refreshCause
}
