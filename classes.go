package clerkauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Token classes: which of Clerk's kinds of token a JWT is, told as Clerk's
// authenticateRequest tells them, before anything is verified, and what
// each class's failures are called.

// Clerk's token categories (the `cat` header).
const (
	catSession  = "cl_B7d4PD111AAA"
	catTemplate = "cl_B7d4PD222AAA"
	catM2M      = "cl_B7d4PD333AAA"
	catIgnore   = "cl_I7d4PD111III"
)

// Token classes, as accepted by `accept` and exposed in
// {http.auth.user.token_type}. The machine classes carry Clerk's TokenType
// names.
const (
	TokenTypeSession  = "session"
	TokenTypeTemplate = "template"
	TokenTypeAPIKey   = "api_key"
	TokenTypeM2M      = "m2m_token"
	TokenTypeOAuth    = "oauth_token"
)

// machineSubjectPrefix marks the subject of an M2M token: a machine.
const machineSubjectPrefix = "mch_"

// isMachineClass reports the classes that stand for a machine rather than
// a user's browser session.
func isMachineClass(class string) bool {
	return class == TokenTypeAPIKey || class == TokenTypeM2M || class == TokenTypeOAuth
}

// tokenForm is what an unverified payload says about the token's class.
type tokenForm struct {
	parsed  bool // the payload is a JSON object, so it can name a class
	machine bool // its sub is a machine subject
	sid     bool // it has a sid
}

// unverifiedForm reads the class-relevant claims of a payload. When the
// strict decode failed (a mistyped exp, say), a lenient walk still finds
// sub, as Clerk's JSON.parse would.
func unverifiedForm(payload string, c *claims, claimsErr error) tokenForm {
	if claimsErr == nil {
		return tokenForm{parsed: true, machine: strings.HasPrefix(c.Sub, machineSubjectPrefix), sid: c.Sid != ""}
	}
	var f tokenForm
	err := walkObject(payload, func(name, value string) error {
		switch name {
		case "sub":
			sub, ok := stringValue(value)
			f.machine = ok && strings.HasPrefix(sub, machineSubjectPrefix)
		case "sid":
			f.sid = value != "null"
		}
		return nil
	})
	f.parsed = err == nil
	return f
}

// classify tells a JWT's class as Clerk's getMachineTokenType does: a
// machine subject makes an M2M token, whatever else the token says; then an
// RFC 9068 typ an OAuth access token; then the `cat` header a session or a
// JWT template, with templates told from sessions by their lack of a sid
// when the header has no category (older instances). Any other category
// (M2M on a user subject, null, one Clerk adds later) is refused: fail
// closed. A payload that does not parse says nothing about the class, as
// in Clerk, where such a token is no machine token.
func classify(hdr *jwtHeader, form tokenForm) (string, error) {
	if form.parsed && form.machine {
		return TokenTypeM2M, nil
	}
	if form.parsed && (hdr.Typ == `"at+jwt"` || hdr.Typ == `"application/at+jwt"`) {
		return TokenTypeOAuth, nil
	}
	if hdr.Cat == "" {
		if form.sid {
			return TokenTypeSession, nil
		}
		return TokenTypeTemplate, nil
	}
	cat, err := typedString("cat", hdr.Cat)
	if err != nil {
		return "", reject(ReasonTokenInvalid, "header cat is not a string")
	}
	switch {
	case hdr.Cat == "null":
	case cat == catSession:
		return TokenTypeSession, nil
	case cat == catTemplate:
		return TokenTypeTemplate, nil
	case cat == catIgnore && form.sid:
		return TokenTypeSession, nil
	case cat == catIgnore:
		return TokenTypeTemplate, nil
	}
	return "", reject(ReasonTypeMismatch, "token category %q is not a session or JWT template", truncate(cat, 32))
}

// className names a class in messages.
func className(class string) string {
	switch class {
	case TokenTypeAPIKey:
		return "API key"
	case TokenTypeM2M:
		return "M2M"
	case TokenTypeOAuth:
		return "OAuth access"
	}
	return class
}

// machineFailure re-codes a machine JWT's failure as Clerk's verifyM2MJwt
// and verifyOAuthJwt do: every check after the class is
// token-verification-failed, with the specific cause kept in the detail.
// Keys that cannot be had stay a 503: a Clerk outage is not a bad token.
func machineFailure(err error) error {
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Reason == ReasonJWKSUnavailable || ve.Reason == ReasonVerificationFailed {
		return err
	}
	return &VerifyError{Reason: ReasonVerificationFailed, Err: fmt.Errorf("%s: %w", ve.Reason, ve.Err)}
}

// defaultAccept are the classes a route takes unless it says otherwise:
// what a browser session can hold.
var defaultAccept = []string{TokenTypeSession, TokenTypeTemplate}

// tokenClasses are the values accept takes.
var tokenClasses = []string{TokenTypeSession, TokenTypeTemplate, TokenTypeAPIKey, TokenTypeM2M, TokenTypeOAuth}

// acceptedClasses turns the accept list into a set, defaultAccept if empty.
func acceptedClasses(accept []string) (map[string]bool, error) {
	if len(accept) == 0 {
		accept = defaultAccept
	}
	set := map[string]bool{}
	for _, a := range accept {
		if !slices.Contains(tokenClasses, a) {
			return nil, fmt.Errorf("accept %q: token classes are %s", a, strings.Join(tokenClasses, ", "))
		}
		set[a] = true
	}
	return set, nil
}
