package clerkapi

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
)

// observedEndpoint is one endpoint as TestObserverCountsEachRequest calls
// it: value makes what is sent ("issued", "unknown" or "malformed"),
// fault injects a fault on that endpoint alone.
type observedEndpoint struct {
	endpoint string
	machine  bool
	value    func(iss *clerktest.Issuer, what string) string
	call     func(c *Client, value string) error
	fault    func(iss *clerktest.Issuer, f clerktest.Fault)
}

func observedEndpoints(t *testing.T) []observedEndpoint {
	eps := []observedEndpoint{{
		endpoint: EndpointHandshakePayload,
		value: func(iss *clerktest.Issuer, what string) string {
			switch what {
			case "issued":
				return nonceFor(t, iss)
			case "unknown":
				return "UNKNOWNNONCE" + strings.Repeat("Q", 20)
			default:
				return "not a nonce"
			}
		},
		call: func(c *Client, nonce string) error {
			_, err := c.HandshakePayload(context.Background(), nonce)
			return err
		},
		fault: func(iss *clerktest.Issuer, f clerktest.Fault) { iss.SetPayloadFault(clerktest.PayloadFault{Fault: f}) },
	}}
	for _, kind := range machineKinds {
		i, _ := endpointOf(kind)
		eps = append(eps, observedEndpoint{
			endpoint: machineEndpoints[i].endpoint,
			machine:  true,
			value: func(iss *clerktest.Issuer, what string) string {
				switch what {
				case "issued":
					return issueFor(iss, kind, time.Time{})
				case "unknown":
					return unknownToken(kind)
				default:
					return machineEndpoints[i].prefix + "not a token"
				}
			},
			call: func(c *Client, token string) error {
				_, err := c.VerifyMachineToken(context.Background(), kind, token, 0)
				return err
			},
			fault: func(iss *clerktest.Issuer, f clerktest.Fault) { iss.SetMachineFault(clerktest.MachineFault{Fault: f}) },
		})
	}
	return eps
}

// TestObserverCountsEachRequest makes one call per case and endpoint and
// checks all the Observer was told. want lists events without their
// endpoint ("call invalid", "limited"); a machine-token verification that
// reaches the cache is also told of as "lookup miss".
func TestObserverCountsEachRequest(t *testing.T) {
	iss := clerktest.Start(t)
	tests := []struct {
		name        string
		what        string // "issued", "unknown" or "malformed"
		secret      string // the client's, if not iss's
		fault       *clerktest.Fault
		emptyBucket bool
		want        []string
	}{
		{"answered", "issued", "", nil, false, []string{"call " + ResultOK}},
		{"404", "unknown", "", nil, false, []string{"call " + ResultInvalid}},
		{"400", "issued", "", &clerktest.Fault{Status: 400}, false, []string{"call " + ResultInvalid}},
		{"401", "issued", "sk_test_WRONG", nil, false, []string{"call " + ResultUnauthorized}},
		{"Clerk's 429", "issued", "", &clerktest.Fault{Status: 429}, false, []string{"call " + ResultUnavailable}},
		{"500", "issued", "", &clerktest.Fault{Status: 500}, false, []string{"call " + ResultUnavailable}},
		{"dropped connection", "issued", "", &clerktest.Fault{CloseConn: true}, false, []string{"call " + ResultUnavailable}},
		{"not JSON", "issued", "", &clerktest.Fault{Body: []byte(`<html>`)}, false, []string{"call " + ResultUnavailable}},
		{"the bucket is empty", "issued", "", nil, true, []string{"limited"}},
		{"cannot be valid", "malformed", "", nil, false, nil},
	}
	for _, ep := range observedEndpoints(t) {
		for _, tc := range tests {
			t.Run(ep.endpoint+"/"+tc.name, func(t *testing.T) {
				secret := tc.secret
				if secret == "" {
					secret = iss.SecretKey()
				}
				var o observed
				c, _ := newClient(t, iss.APIURL(), secret, func(cfg *Config) { cfg.Observer = o.observer() })
				value := ep.value(iss, tc.what)
				if tc.fault != nil {
					ep.fault(iss, *tc.fault)
					defer iss.ClearPayloadFault()
					defer iss.ClearMachineFault()
				}
				if tc.emptyBucket {
					for {
						if ok, _ := c.bucket.take(); !ok {
							break
						}
					}
				}
				if err := ep.call(c, value); (err == nil) != (len(tc.want) == 1 && tc.want[0] == "call "+ResultOK) {
					t.Errorf("error %v", err)
				}
				want := make(map[string]int)
				for _, w := range tc.want {
					verb, result, _ := strings.Cut(w, " ")
					want[strings.TrimSpace(verb+" "+ep.endpoint+" "+result)]++
				}
				if ep.machine && tc.what != "malformed" {
					want["lookup miss"]++
				}
				if got := o.counts(); !maps.Equal(got, want) {
					t.Errorf("observed %v, want %v", got, want)
				}
			})
		}
	}
}

// TestObserverMachineLookups checks that cache answers are told of as
// hits, and that a request shared by concurrent callers is told of once.
func TestObserverMachineLookups(t *testing.T) {
	const callers = 100
	iss := clerktest.Start(t)
	var o observed
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) { cfg.Observer = o.observer() })
	token := issueFor(iss, M2MToken, time.Time{})
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if _, err := c.VerifyMachineToken(context.Background(), M2MToken, token, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 2 {
		c.VerifyMachineToken(context.Background(), M2MToken, unknownToken(M2MToken), 0)
	}
	got := o.counts()
	hits, misses := got["lookup hit"], got["lookup miss"]
	wantCalls := map[string]int{
		"call " + EndpointM2MTokenVerify + " " + ResultOK:      1,
		"call " + EndpointM2MTokenVerify + " " + ResultInvalid: 1,
	}
	delete(got, "lookup hit")
	delete(got, "lookup miss")
	if !maps.Equal(got, wantCalls) || hits+misses != callers+2 || misses < 2 || hits < 1 {
		t.Errorf("observed %v, %d hits, %d misses; want %v and %d look-ups, the unknown token's second a hit",
			got, hits, misses, wantCalls, callers+2)
	}
	if s := c.MachineStats(); s.CacheHits != int64(hits) || s.CacheMisses != int64(misses) {
		t.Errorf("stats %+v, observed %d hits and %d misses", s, hits, misses)
	}
}

// TestCachedHitDoesNotAllocate guards the path every request with a known
// opaque token takes, Observer included.
func TestCachedHitDoesNotAllocate(t *testing.T) {
	iss := clerktest.Start(t)
	var hits int
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) {
		cfg.Observer = Observer{MachineLookup: func(hit bool) {
			if hit {
				hits++
			}
		}}
	})
	token := issueFor(iss, APIKey, time.Time{})
	ctx := context.Background()
	if _, err := c.VerifyMachineToken(ctx, APIKey, token, 0); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := c.VerifyMachineToken(ctx, APIKey, token, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 || hits == 0 {
		t.Errorf("%v allocations per cached verification (%d hits told), want 0", allocs, hits)
	}
}
