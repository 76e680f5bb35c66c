package clerkauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerkapi"
)

// What `enrich` may fetch from the Backend API.
const (
	enrichUser = "user"
	enrichOrg  = "org"
)

// orgPrefix is where the active organization's Backend API data is:
// {http.auth.org.name}, {http.auth.org.slug}, ...
const orgPrefix = "http.auth.org."

// enrichment is the Backend API data of one request's user and active
// organization, each nil when not configured, not applicable or not to be
// had. Each request gets its own, so a cached assertion is checked against
// it with same.
type enrichment struct {
	user *clerkapi.User
	org  *clerkapi.Organization
}

// same reports whether o holds the same data as e. The shared cache hands
// out one immutable value per entry, and a new one whenever Clerk's answer
// is fetched again, so the same pointers are the same data.
func (e *enrichment) same(o *enrichment) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.user == o.user && e.org == o.org
}

// enrichedClaims are the enrichment fields of an identity assertion.
type enrichedClaims struct {
	Email             string          `json:"email,omitempty"`
	FirstName         string          `json:"first_name,omitempty"`
	LastName          string          `json:"last_name,omitempty"`
	Username          string          `json:"username,omitempty"`
	ImageURL          string          `json:"image_url,omitempty"`
	PublicMetadata    json.RawMessage `json:"public_metadata,omitempty"`
	OrgName           string          `json:"org_name,omitempty"`
	OrgSlug           string          `json:"org_slug,omitempty"`
	OrgPublicMetadata json.RawMessage `json:"org_public_metadata,omitempty"`
}

func (e *enrichment) claims() *enrichedClaims {
	if e == nil {
		return nil
	}
	c := new(enrichedClaims)
	if u := e.user; u != nil {
		c.Email, c.FirstName, c.LastName, c.Username, c.ImageURL, c.PublicMetadata =
			u.Email, u.FirstName, u.LastName, u.Username, u.ImageURL, u.PublicMetadata
	}
	if o := e.org; o != nil {
		c.OrgName, c.OrgSlug, c.OrgPublicMetadata = o.Name, o.Slug, o.PublicMetadata
	}
	return c
}

// userField is {http.auth.user.<name>} for the enrichment fields; ok is
// false for names that are not enrichment fields.
func (e *enrichment) userField(name string) (string, bool) {
	u := &clerkapi.User{} // no data: every field is known, and empty
	if e != nil && e.user != nil {
		u = e.user
	}
	switch name {
	case "email":
		return u.Email, true
	case "first_name":
		return u.FirstName, true
	case "last_name":
		return u.LastName, true
	case "username":
		return u.Username, true
	case "image_url":
		return u.ImageURL, true
	}
	if path, ok := strings.CutPrefix(name, "public_metadata."); ok {
		return metadataField(u.PublicMetadata, path), true
	}
	return "", false
}

// orgField is {http.auth.org.<name>}.
func (e *enrichment) orgField(name string) string {
	if e == nil || e.org == nil {
		return ""
	}
	switch name {
	case "id":
		return e.org.ID
	case "name":
		return e.org.Name
	case "slug":
		return e.org.Slug
	case "image_url":
		return e.org.ImageURL
	}
	if path, ok := strings.CutPrefix(name, "public_metadata."); ok {
		return metadataField(e.org.PublicMetadata, path)
	}
	return ""
}

// metadataField reads a dotted path of public metadata as a claim
// placeholder reads a claim.
func metadataField(raw json.RawMessage, path string) string {
	if len(raw) == 0 {
		return ""
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber() // as claims: numbers exactly as Clerk sent them
	if dec.Decode(&doc) != nil {
		return ""
	}
	v, _ := lookupPath(doc, path)
	return claimString(v)
}

// enricher fetches a route's enrichment.
type enricher struct {
	client   *clerkapi.Client
	user     bool
	org      bool
	required bool
	logger   *zap.Logger
}

// enrich fetches what is configured for id. With enrich_required, data
// that cannot be had is a 503 (ReasonEnrichUnavailable); without it the
// request goes on with what could be had, and the failure is logged.
func (e *enricher) enrich(ctx context.Context, id *Identity) (*enrichment, error) {
	var out enrichment
	var errs []error
	if e.user && strings.HasPrefix(id.Subject, "user_") {
		u, err := e.client.GetUser(ctx, id.Subject)
		if err == nil {
			out.user = u
		} else {
			errs = append(errs, err)
		}
	}
	if e.org && id.OrgID != "" {
		o, err := e.client.GetOrganization(ctx, id.OrgID)
		if err == nil {
			out.org = o
		} else {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if e.required {
			return nil, &VerifyError{Reason: ReasonEnrichUnavailable, Err: err}
		}
		e.logger.Warn("Backend API data left out of this request", zap.String("user_id", id.Subject), zap.Error(err))
	}
	if out.user == nil && out.org == nil {
		return nil, nil
	}
	return &out, nil
}

// provisionEnrich checks enrich and enrich_required.
func (h *Handler) provisionEnrich(*caddy.Replacer) error {
	if len(h.Enrich) == 0 {
		if h.EnrichRequired {
			return errors.New("enrich_required needs enrich user and/or enrich org")
		}
		return nil
	}
	e := &enricher{required: h.EnrichRequired, logger: h.logger.Named("enrich")}
	for _, what := range h.Enrich {
		switch what {
		case enrichUser:
			e.user = true
		case enrichOrg:
			e.org = true
		default:
			return fmt.Errorf("enrich %q: use %s and/or %s", what, enrichUser, enrichOrg)
		}
	}
	if h.backend == nil {
		return errors.New("enrich needs secret_key: user and organization data come from Clerk's Backend API")
	}
	api, err := h.apiClient()
	if err != nil {
		return err
	}
	e.client = api
	h.enricher = e
	return nil
}
