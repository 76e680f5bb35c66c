package clerkauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The header and payload decoders (walkObject and the member methods)
// replaced encoding/json plus checks around it. These tests keep that
// pipeline as the oracle: on any input, the decoders must refuse exactly
// what it refused and read the same values from what it accepted.

// oracleClaims is the payload as encoding/json reads it, with the types the
// verifier used before it had its own decoder.
type oracleClaims struct {
	Sub            *string         `json:"sub"`
	Exp            *float64        `json:"exp"`
	Nbf            oracleDate      `json:"nbf"`
	Iat            oracleDate      `json:"iat"`
	Iss            json.RawMessage `json:"iss"`
	Azp            json.RawMessage `json:"azp"`
	Aud            json.RawMessage `json:"aud"`
	Sid            string          `json:"sid"`
	V              json.RawMessage `json:"v"`
	OrgID          oracleLenient   `json:"org_id"`
	OrgSlug        oracleLenient   `json:"org_slug"`
	OrgRole        oracleLenient   `json:"org_role"`
	OrgPermissions json.RawMessage `json:"org_permissions"`
	O              json.RawMessage `json:"o"`
	Fea            oracleLenient   `json:"fea"`
	Pla            oracleLenient   `json:"pla"`
	Sts            oracleLenient   `json:"sts"`
	Act            json.RawMessage `json:"act"`
}

type oracleOrg struct {
	ID  oracleLenient `json:"id"`
	Slg oracleLenient `json:"slg"`
	Rol oracleLenient `json:"rol"`
	Per oracleLenient `json:"per"`
	Fpm oracleLenient `json:"fpm"`
}

type oracleAct struct {
	Sub oracleLenient `json:"sub"`
}

type oracleHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  json.RawMessage `json:"typ"`
	Cat  json.RawMessage `json:"cat"`
	Crit json.RawMessage `json:"crit"`
}

// oracleDate refuses null, which encoding/json would read as absent.
type oracleDate struct {
	set bool
	sec float64
}

func (d *oracleDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return fmt.Errorf("null")
	}
	d.set = true
	return json.Unmarshal(b, &d.sec)
}

// oracleLenient reads a string, and anything else as "".
type oracleLenient string

func (s *oracleLenient) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = oracleLenient(v)
	}
	return nil
}

// oracleDecode reads data into v as the old pipeline did: valid UTF-8,
// encoding/json, then no repeated top-level member and no name that
// encoding/json matches to one of v's fields without being its name.
func oracleDecode(data []byte, v any) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("not UTF-8")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return err
	}
	return oracleMembers(data, reflect.TypeOf(v).Elem())
}

// oracleMembers refuses, in a JSON object (anything else passes), a
// repeated top-level name, or one that is not the tag of a field of struct
// type t but that encoding/json assigns to such a field, or that folds like
// one under appendFoldedName (which folds a little more than encoding/json:
// "ıss" as "iss").
func oracleMembers(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name := tok.(string)
		if seen[name] {
			return fmt.Errorf("repeated %q", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
		if field := oracleFieldFor(name, t); field != "" && field != name {
			return fmt.Errorf("%q fills %q", name, field)
		}
		for i := range t.NumField() {
			field := t.Field(i).Tag.Get("json")
			if t.Field(i).IsExported() && field != name && string(appendFoldedName(nil, field)) == string(appendFoldedName(nil, name)) {
				return fmt.Errorf("%q folds like %q", name, field)
			}
		}
	}
	return nil
}

// oracleFieldFor returns the tag of the field of t that encoding/json fills
// from a member named name, or "".
func oracleFieldFor(name string, t reflect.Type) string {
	probeType := oracleProbe(t)
	quoted, _ := json.Marshal(name)
	probe := reflect.New(probeType)
	if json.Unmarshal([]byte(`{`+string(quoted)+`:0}`), probe.Interface()) != nil {
		return ""
	}
	for i := range probeType.NumField() {
		if probe.Elem().Field(i).Len() > 0 {
			return probeType.Field(i).Tag.Get("json")
		}
	}
	return ""
}

var oracleProbes sync.Map // reflect.Type → reflect.Type

// oracleProbe is t with every tagged field a json.RawMessage, so that
// decoding one member shows which field encoding/json fills from it.
func oracleProbe(t reflect.Type) reflect.Type {
	if p, ok := oracleProbes.Load(t); ok {
		return p.(reflect.Type)
	}
	var fields []reflect.StructField
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			fields = append(fields, reflect.StructField{Name: t.Field(i).Name, Type: reflect.TypeOf(json.RawMessage{}), Tag: t.Field(i).Tag})
		}
	}
	p := reflect.StructOf(fields)
	oracleProbes.Store(t, p)
	return p
}

// checkClaimsDecoder compares claims.decode with the oracle on one payload.
func checkClaimsDecoder(t *testing.T, payload string) {
	t.Helper()
	var want oracleClaims
	wantErr := oracleDecode([]byte(payload), &want)
	if wantErr == nil && len(want.O) > 0 {
		wantErr = oracleMembers(want.O, reflect.TypeOf(oracleOrg{}))
	}
	if wantErr == nil && len(want.Act) > 0 {
		wantErr = oracleMembers(want.Act, reflect.TypeOf(oracleAct{}))
	}
	var c claims
	err := c.decode(payload)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("payload %q: decode error %v, encoding/json and the member checks: %v", payload, err, wantErr)
	}
	if err != nil {
		return
	}
	sub := ""
	if want.Sub != nil {
		sub = *want.Sub
	}
	var org oracleOrg
	if json.Unmarshal(want.O, &org) != nil || !isObject(string(want.O)) {
		org = oracleOrg{}
	}
	var act oracleAct
	if json.Unmarshal(want.Act, &act) != nil {
		act = oracleAct{}
	}
	var v float64
	for _, cmp := range []struct {
		name      string
		got, want any
	}{
		{"sub", c.Sub, sub},
		{"exp", c.Exp.ptr(), want.Exp},
		{"nbf", c.Nbf.ptr(), want.Nbf.ptr()},
		{"iat", c.Iat.ptr(), want.Iat.ptr()},
		{"iss", c.Iss, string(want.Iss)},
		{"azp", c.Azp, string(want.Azp)},
		{"aud", c.Aud, string(want.Aud)},
		{"sid", c.Sid, want.Sid},
		{"v", isV2(c.Version), len(want.V) > 0 && json.Unmarshal(want.V, &v) == nil && v == 2},
		{"org_id", c.OrgID, string(want.OrgID)},
		{"org_slug", c.OrgSlug, string(want.OrgSlug)},
		{"org_role", c.OrgRole, string(want.OrgRole)},
		{"org_permissions", stringList(c.OrgPermissions), oracleStringList(want.OrgPermissions)},
		{"o", c.org, orgV2{string(org.ID), string(org.Slg), string(org.Rol), string(org.Per), string(org.Fpm)}},
		{"fea", c.Features, string(want.Fea)},
		{"pla", c.Plans, string(want.Pla)},
		{"sts", c.SessionStatus, string(want.Sts)},
		{"act.sub", c.actorSub, string(act.Sub)},
	} {
		if !reflect.DeepEqual(cmp.got, cmp.want) && !sameDate(cmp.got, cmp.want) {
			t.Errorf("payload %q: %s = %#v, encoding/json reads %#v", payload, cmp.name, cmp.got, cmp.want)
		}
	}
}

func (d oracleDate) ptr() *float64 { return optionalDate(d).ptr() }

// sameDate compares two *float64 by value.
func sameDate(a, b any) bool {
	x, ok1 := a.(*float64)
	y, ok2 := b.(*float64)
	return ok1 && ok2 && x != nil && y != nil && math.Float64bits(*x) == math.Float64bits(*y)
}

// oracleStringList is the lenient org_permissions list as the old code read
// it through encoding/json.
func oracleStringList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		if json.Unmarshal(it, &s) == nil && s != "" {
			out = append(out, s)
		}
	}
	return out
}

// checkHeaderDecoder compares the header decoder with the oracle.
func checkHeaderDecoder(t *testing.T, header string) {
	t.Helper()
	var want oracleHeader
	wantErr := oracleDecode([]byte(header), &want)
	var h jwtHeader
	err := walkObject(header, h.member)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("header %q: decode error %v, encoding/json and the member checks: %v", header, err, wantErr)
	}
	if err == nil {
		got := oracleHeader{h.Alg, h.Kid, json.RawMessage(h.Typ), json.RawMessage(h.Cat), json.RawMessage(h.Crit)}
		if !reflect.DeepEqual(normalizeRaw(got), normalizeRaw(want)) {
			t.Errorf("header %q: read %+v, encoding/json reads %+v", header, got, want)
		}
	}
}

// normalizeRaw makes absent raw members compare equal however they are
// spelled (nil or empty).
func normalizeRaw(h oracleHeader) oracleHeader {
	for _, r := range []*json.RawMessage{&h.Typ, &h.Cat, &h.Crit} {
		if len(*r) == 0 {
			*r = nil
		}
	}
	return h
}

// decoderSeeds are JSON texts at the edges of the grammar and of the
// member rules; each is also tried as a header and inside a payload.
var decoderSeeds = []string{
	`{}`, ` { } `, `null`, ` null `, `nul`, `nullx`, `[]`, `[1]`, `"x"`, `1`, `true`, ``, ` `, `{`, `}`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":1}x`, `{"a":1}{}`, `{'a':1}`, `{a:1}`, "\ufeff{}", "{\"a\":\"\xff\"}",
	`{"a":01}`, `{"a":-0}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":1E-2}`, `{"a":+1}`, `{"a":1.5e3}`,
	`{"a":"\u00e9\ud83d\ude00"}`, `{"a":"\ud800"}`, `{"a":"\u12"}`, `{"a":"\x"}`, "{\"a\":\"\t\"}", `{"a":"\/\b\f\n\r\t\"\\"}`,
	`{"a":tru}`, `{"a":true,"b":false,"c":null}`, `{"a":[1,[2,{"b":[]}],{}]}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":{"b":1,}}`,
	`{"a":[}`, `{"a":{]}`, `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 39) + `}`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"":1,"":2}`, `{"\u0000":1}`,
}

// claimSeeds are payloads that exercise the claim types and member rules.
var claimSeeds = []string{
	`{"sub":"user_1","exp":1800000060,"nbf":1,"iat":2,"iss":"https://x","azp":"http://a","sid":"sess_1"}`,
	`{"sub":null,"exp":null}`, `{"nbf":null}`, `{"iat":null}`, `{"sub":1}`, `{"sub":["a"]}`, `{"sid":1}`, `{"sid":null}`,
	`{"exp":"1"}`, `{"exp":1e400}`, `{"exp":-1e400}`, `{"exp":1e-400}`, `{"exp":-0}`, `{"exp":9007199254740993}`, `{"exp":true}`,
	`{"iss":1,"azp":[],"aud":{"a":1}}`, `{"aud":["a",1,null]}`, `{"v":2}`, `{"v":2.0}`, `{"v":"2"}`, `{"v":2e0}`, `{"v":null}`, `{"v":1e400}`,
	`{"org_id":"org_1","org_slug":1,"org_role":"org:admin","org_permissions":["a",1,"",null,"b"]}`,
	`{"org_permissions":null}`, `{"org_permissions":"a"}`, `{"org_permissions":[]}`, `{"org_permissions":{}}`,
	`{"o":{"id":"org_1","slg":"a","rol":"admin","per":"r,w","fpm":"3"},"v":2}`, `{"o":{"ID":"x"}}`, `{"o":{"id":1,"id":2}}`,
	`{"o":"org_1"}`, `{"o":null}`, `{"o":[{"ID":1}]}`, `{"act":{"sub":"user_admin","iss":"x"}}`, `{"act":{"SUB":"x"}}`,
	`{"act":{"sub":1}}`, `{"act":"x"}`, `{"fea":"o:a","pla":["u:b"],"sts":"pending"}`, `{"SUB":"x"}`, `{"Sub":"x","sub":"y"}`,
	`{"ſub":"x"}`, `{"\u212Aid":"x"}`, `{"ıss":"x"}`, `{"s\u0075b":"x"}`, `{"sub":"a\u0000b"}`, `{"sub":"user_\ud800"}`,
	`{"Org_ID":"x"}`, `{"ORG_PERMISSIONS":[]}`, `{"xyz":1,"Xyz":2}`,
}

var headerSeeds = []string{
	`{"alg":"RS256","kid":"ins_1","typ":"JWT","cat":"cl_B7d4PD111AAA"}`, `{"alg":null,"kid":null}`, `{"alg":1}`, `{"kid":[]}`,
	`{"typ":"J\u0057T"}`, `{"crit":null}`, `{"Alg":"RS256"}`, `{"\u212Aid":"x"}`, `{"alg":"RS256","alg":"none"}`, `{"ALG":1,"alg":"x"}`,
}

func TestDecodersMatchEncodingJSON(t *testing.T) {
	for _, s := range append(append(decoderSeeds, claimSeeds...), headerSeeds...) {
		t.Run(s, func(t *testing.T) {
			checkClaimsDecoder(t, s)
			checkHeaderDecoder(t, s)
			if strings.HasPrefix(s, "{") {
				checkClaimsDecoder(t, `{"x":`+s+`}`)
				checkClaimsDecoder(t, `{"aud":`+s+`,"org_permissions":[`+s+`]}`)
			}
		})
	}
}

func FuzzDecoders(f *testing.F) {
	for _, s := range append(append(decoderSeeds, claimSeeds...), headerSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkClaimsDecoder(t, s)
		checkHeaderDecoder(t, s)
	})
}
