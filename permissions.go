package clerkauth

import (
	"fmt"
	"math/big"
	"strings"
)

// orgPermissionsV2 expands a v2 token's compact org permissions into
// "org:<feature>:<permission>" strings.
//
// per is a comma list of permission names; fpm a comma list of decimal
// bitmasks, one per feature; bit k of a mask (LSB = 0) grants per[k] on
// that feature. The features come from fea, and which of them the masks
// line up with is where Clerk's SDKs disagree (reference §7.3): Go and
// Python index the full fea list, JavaScript only its org-scoped entries.
// The two readings give different results only when a user-only feature
// precedes an org feature, and then the count of masks tells them apart:
//
//   - len(fpm) == len(fea): full-list positions (what the docs describe and
//     what Clerk's servers emit, with zero masks for user-only features).
//     The masks of features without org scope are skipped.
//   - else len(fpm) == number of org-scoped features: org-subset positions.
//   - else: nobody can tell which mask is whose, so no permissions at all,
//     and the returned problem says why.
//
// Masks may be of any size (Clerk's JS moved to arbitrary precision once
// masks passed 2^53); bits with no permission name are ignored. A mask that
// is not a decimal number also fails closed: guessing could grant a
// permission the issuer never gave. Missing per or fpm simply mean no
// permissions, as in Clerk's parser.
func orgPermissionsV2(per, fpm string, features []scopedEntry) ([]string, string) {
	if per == "" || fpm == "" {
		return nil, ""
	}
	names := splitTrim(per)
	masks := splitTrim(fpm)

	indexed := features
	if len(masks) != len(features) {
		indexed = nil
		for _, f := range features {
			if f.org {
				indexed = append(indexed, f)
			}
		}
		if len(masks) != len(indexed) {
			return nil, fmt.Sprintf("o.fpm has %d masks but fea has %d features, %d of them org-scoped: cannot tell which mask belongs to which feature",
				len(masks), len(features), len(indexed))
		}
	}

	var perms []string
	var bits big.Int
	for i, m := range masks {
		if !isDecimal(m) {
			return nil, fmt.Sprintf("o.fpm mask %d (%q) is not a decimal number", i+1, truncate(m, 24))
		}
		f := indexed[i]
		if !f.org {
			continue
		}
		bits.SetString(m, 10)
		for k, name := range names {
			// An empty name (a stray comma in per) grants nothing rather
			// than a meaningless "org:<feature>:".
			if bits.Bit(k) == 1 && name != "" {
				perms = append(perms, "org:"+f.slug+":"+name)
			}
		}
	}
	return perms, ""
}

// splitTrim splits a comma list, trimming spaces around each element as
// Clerk's parser does.
func splitTrim(list string) []string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// isDecimal reports whether s is a non-empty run of ASCII digits. Checked
// by hand because big.Int.SetString would also take a sign.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
