package clerkauth

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// stripOwned closes every way a client could put an owned header in front
// of the upstream, or take a verified one away: its own copies and
// look-alikes, the Connection option that would make a proxy drop the
// verified ones, and trailers sent after the body.
func stripOwned(r *http.Request, owned []string) {
	if len(owned) == 0 {
		return
	}
	stripHeaders(r.Header, owned)
	keepOwnedEndToEnd(r.Header, owned)
	stripOwnedTrailers(r, owned)
}

// keepOwnedEndToEnd drops, from the client's Connection header, every
// option that names an owned header or a look-alike. A client listing
// X-User-Id there asks each proxy to remove it as hop-by-hop (RFC 9110
// §7.6.1), and reverse_proxy does so after clerk_auth has set it: the
// upstream would get a verified request without its identity, or a user
// without the X-Org-Id of their active organization. The other options
// (close, keep-alive, upgrade, ...) are kept as sent.
func keepOwnedEndToEnd(h http.Header, owned []string) {
	vals, ok := h["Connection"]
	if !ok {
		return
	}
	var kept []string
	dropped := false
	for _, v := range vals {
		for opt := range strings.SplitSeq(v, ",") {
			opt = strings.TrimSpace(opt)
			if opt == "" {
				continue
			}
			if ownsHeader(opt, owned) {
				dropped = true
				continue
			}
			kept = append(kept, opt)
		}
	}
	switch {
	case !dropped:
	case len(kept) == 0:
		delete(h, "Connection")
	default:
		h["Connection"] = []string{strings.Join(kept, ", ")}
	}
}

func ownsHeader(name string, owned []string) bool {
	for _, o := range owned {
		if sameHeaderVariable(name, o) {
			return true
		}
	}
	return false
}

// stripOwnedTrailers keeps client trailer fields named like an owned header
// (or a look-alike) from reaching the upstream. net/http fills r.Trailer
// only when the body hits EOF, long after the headers were stripped, and
// reverse_proxy forwards whatever the map then holds. Only declared
// trailers can get there: for them the map exists already and every copy
// of the request shares it, so the names are dropped now (they would be
// announced to the upstream) and the values at EOF, before anything reads
// them.
func stripOwnedTrailers(r *http.Request, owned []string) {
	if r.Trailer == nil {
		return
	}
	stripHeaders(r.Trailer, owned)
	r.Body = &trailerFilter{ReadCloser: r.Body, trailer: r.Trailer, owned: owned}
}

type trailerFilter struct {
	io.ReadCloser
	trailer http.Header
	owned   []string
}

func (b *trailerFilter) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		stripHeaders(b.trailer, b.owned)
	}
	return n, err
}

// sameHeaderVariable reports whether header names a and b become the same
// variable in a CGI/WSGI server (HTTP_X_USER_ID): case and '-' vs '_' do not
// matter there, so a client could smuggle X_User_Id past a check for
// X-User-Id. PHP also turns '.' into '_' when it registers $_SERVER, so
// X.User.Id is one more spelling of the same variable: Caddy forwards it to
// FastCGI as HTTP_X.USER.ID once expected_dot_headers allows it, and PHP
// keeps whichever of the two parameters arrives last.
func sameHeaderVariable(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c == '_' || c == '.':
		return '-'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 'A'
	}
	return c
}

// stripHeaders deletes every client-sent header that some upstream could
// read as one of the owned names.
func stripHeaders(h http.Header, owned []string) {
	for name := range h {
		for _, o := range owned {
			if sameHeaderVariable(name, o) {
				delete(h, name)
				break
			}
		}
	}
}

// requestCarriers are the headers clerk_auth reads the request's own
// credentials and routing from. Owning one would strip the client's token
// (or host) before it is read.
var requestCarriers = []string{"Authorization", "Cookie", "Proxy-Authorization", "Host"}

// checkOwnedName refuses a header clerk_auth would set that is not a field
// name, or that some server would read as one of requestCarriers.
func checkOwnedName(setting, name string) error {
	if !validHeaderName(name) {
		return fmt.Errorf("%s %q is not a valid header field name", setting, name)
	}
	for _, c := range requestCarriers {
		if sameHeaderVariable(name, c) {
			return fmt.Errorf("%s %q would replace the request's own %s header: pick another name, e.g. X-Clerk-Identity", setting, name, c)
		}
	}
	return nil
}

// validHeaderName reports a valid field name (RFC 9110 §5.1 token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
