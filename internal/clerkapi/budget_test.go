package clerkapi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/clerktest"
	"github.com/caddyclerk/caddy-clerk-auth/internal/fakeclock"
)

func TestBucket(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	b := newBucket(20, 40, clock.Now)
	steps := []struct {
		name      string
		advance   time.Duration
		takes     int
		wantTaken int
		wantWait  time.Duration // of the first refusal
	}{
		{"a full burst", 0, 41, 40, 50 * time.Millisecond},
		{"refill of half a token", 25 * time.Millisecond, 1, 0, 25 * time.Millisecond},
		{"refill of one second", 975 * time.Millisecond, 30, 20, 50 * time.Millisecond},
		{"refill capped at the burst", time.Hour, 50, 40, 50 * time.Millisecond},
		{"a clock stepping back refills nothing", -time.Hour, 1, 0, 50 * time.Millisecond},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			clock.Advance(s.advance)
			taken, wait := 0, time.Duration(0)
			for range s.takes {
				ok, w := b.take()
				if ok {
					taken++
				} else if wait == 0 {
					wait = w
				}
			}
			if taken != s.wantTaken || wait != s.wantWait {
				t.Errorf("took %d, first wait %s; want %d and %s", taken, wait, s.wantTaken, s.wantWait)
			}
		})
	}
}

// TestFlightsAskCached checks when do consults cached: only when no run
// is in flight, and then instead of starting one if it has the answer.
func TestFlightsAskCached(t *testing.T) {
	key := callKey("test", "value")
	tests := []struct {
		name      string
		inFlight  bool // a run for key is in flight, held until the end
		cachedHit bool
		wantVal   string
		wantHit   bool
		wantRuns  int
		wantAsked bool
	}{
		{"no run, cached has it", false, true, "cached", true, 0, true},
		{"no run, cached has not", false, false, "run", false, 1, true},
		{"a run in flight is joined", true, true, "run", false, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f flights[string]
			runs, asked := 0, false
			running, release := make(chan struct{}, 1), make(chan struct{})
			run := func(context.Context) (string, error) {
				runs++
				running <- struct{}{}
				<-release
				return "run", nil
			}
			cached := func() (string, error, bool) { asked = true; return "cached", nil, tc.cachedHit }
			if tc.inFlight {
				go f.do(context.Background(), key, nil, run)
				<-running
				go func() {
					for f.joined.Load() == 0 {
						runtime.Gosched()
					}
					close(release)
				}()
			} else {
				close(release)
			}
			val, err, hit := f.do(context.Background(), key, cached, run)
			if err != nil || val != tc.wantVal || hit != tc.wantHit || runs != tc.wantRuns || asked != tc.wantAsked {
				t.Errorf("do = %q, %v, hit %v after %d runs, cached asked %v; want %q, hit %v, %d runs, asked %v",
					val, err, hit, runs, asked, tc.wantVal, tc.wantHit, tc.wantRuns, tc.wantAsked)
			}
		})
	}
}

func TestValidNonce(t *testing.T) {
	tests := []struct {
		nonce string
		want  bool
	}{
		{"abc123", true},
		{"4QFHD6ZKDPTL7V7ITX4HKS3U4I", true}, // the fake's rand.Text
		{"a-b.c_d~e", true},
		{strings.Repeat("a", MaxNonceLen), true},
		{"", false},
		{strings.Repeat("a", MaxNonceLen+1), false},
		{"a b", false},
		{"a+b", false},
		{"a/b", false},
		{"a%20b", false},
		{"a&nonce=b", false},
		{"a\nb", false},
		{"é", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%.20q", tc.nonce), func(t *testing.T) {
			if got := ValidNonce(tc.nonce); got != tc.want {
				t.Errorf("ValidNonce = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConcurrentCallsForOneNonceShareOneRequest holds the one request at a
// front server until all 1,000 callers have joined it, so the count does
// not depend on timing.
func TestConcurrentCallsForOneNonceShareOneRequest(t *testing.T) {
	const callers = 1000
	iss := clerktest.Start(t)
	f := newFront(t, iss, true)
	c, _ := newClient(t, f.URL, iss.SecretKey())
	nonce := nonceFor(t, iss)

	results := make(chan []string, callers)
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			d, err := c.HandshakePayload(context.Background(), nonce)
			results <- d
			errs <- err
		})
	}
	for c.Stats().Shared < callers-1 {
		runtime.Gosched()
	}
	f.release()
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a caller got %v", err)
		}
	}
	first := <-results
	for d := range results {
		if !slices.Equal(d, first) {
			t.Fatalf("callers got different directives: %q and %q", d, first)
		}
	}
	if got := iss.HandshakeStats().PayloadCalls; got != 1 {
		t.Errorf("%d Backend API calls for %d concurrent callers of one nonce, want 1", got, callers)
	}
	if s := c.Stats(); s != (Stats{Calls: 1, Shared: callers - 1}) {
		t.Errorf("stats %+v", s)
	}
}

func TestACallerGivingUpLeavesTheOthersTheirAnswer(t *testing.T) {
	iss := clerktest.Start(t)
	f := newFront(t, iss, true)
	c, _ := newClient(t, f.URL, iss.SecretKey())
	nonce := nonceFor(t, iss)

	ctx, cancel := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() {
		_, err := c.HandshakePayload(ctx, nonce)
		quitter <- err
	}()
	<-f.seen // the request is out, held at the front
	stayer := make(chan error, 1)
	go func() {
		_, err := c.HandshakePayload(context.Background(), nonce)
		stayer <- err
	}()
	for c.Stats().Shared < 1 {
		runtime.Gosched()
	}
	cancel()
	if err := <-quitter; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up got %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	f.release()
	if err := <-stayer; err != nil {
		t.Errorf("the caller that stayed got %v, want the directives", err)
	}
}

func TestMalformedNoncesNeverReachClerk(t *testing.T) {
	const flood = 10_000
	iss := clerktest.Start(t)
	c, _ := newClient(t, iss.APIURL(), iss.SecretKey())
	shapes := []func(int) string{
		func(i int) string { return fmt.Sprintf("nonce %d", i) },
		func(i int) string { return fmt.Sprintf("%d/../x", i) },
		func(i int) string { return strings.Repeat("a", MaxNonceLen) + fmt.Sprint(i) },
		func(i int) string { return fmt.Sprintf("%d&nonce=x", i) },
		func(int) string { return "" },
	}
	var wg sync.WaitGroup
	for i := range flood {
		wg.Go(func() {
			nonce := shapes[i%len(shapes)](i)
			_, err := c.HandshakePayload(context.Background(), nonce)
			if !errors.Is(err, ErrNotFound) || leaks(err.Error(), nonce) {
				t.Errorf("nonce %.20q: %v, want ErrNotFound without it", nonce, err)
			}
		})
	}
	wg.Wait()
	if got := iss.HandshakeStats().PayloadCalls; got != 0 {
		t.Errorf("%d Backend API calls for %d malformed nonces, want 0", got, flood)
	}
	if s := c.Stats(); s != (Stats{Refused: flood}) {
		t.Errorf("stats %+v, want %d refused", s, flood)
	}
}

// TestDistinctNoncesSpendAtMostTheBudget floods the client with well-shaped
// nonces nobody handed out; the bucket's clock stands still, so exactly a
// burst of calls goes out, then a second's worth once it moves.
func TestDistinctNoncesSpendAtMostTheBudget(t *testing.T) {
	const flood, rate, burst = 10_000, 20, 40
	iss := clerktest.Start(t)
	c, clock := newClient(t, iss.APIURL(), iss.SecretKey(), func(cfg *Config) { cfg.Rate, cfg.Burst = rate, burst })

	run := func() (notFound, limited int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range flood {
			wg.Go(func() {
				_, err := c.HandshakePayload(context.Background(), fmt.Sprintf("MADEUP%08d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, ErrRateLimited):
					if wait, ok := RetryAfter(err); !ok || wait != time.Second {
						t.Errorf("rate-limited RetryAfter = %s, %v; want 1s", wait, ok)
					}
					limited++
				case errors.Is(err, ErrNotFound):
					notFound++
				default:
					t.Errorf("error %v, want not found or rate limited", err)
				}
			})
		}
		wg.Wait()
		return notFound, limited
	}

	if notFound, limited := run(); notFound != burst || limited != flood-burst {
		t.Errorf("first flood: %d sent, %d refused; want %d and %d", notFound, limited, burst, flood-burst)
	}
	clock.Advance(time.Second)
	if notFound, limited := run(); notFound != rate || limited != flood-rate {
		t.Errorf("a second later: %d sent, %d refused; want %d and %d", notFound, limited, rate, flood-rate)
	}
	if got := iss.HandshakeStats().PayloadCalls; got != burst+rate {
		t.Errorf("%d Backend API calls, want %d", got, burst+rate)
	}
}

// BenchmarkRefusedNonce is the cost of turning away a forged nonce, which a
// flood pays per request.
func BenchmarkRefusedNonce(b *testing.B) {
	c, err := New(Config{SecretKey: "sk_test_SECRET", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.HandshakePayload(ctx, "not a nonce"); !errors.Is(err, ErrNotFound) {
			b.Fatal(err)
		}
	}
}

// BenchmarkRateLimitedNonce is the cost of turning away a well-shaped nonce
// once the bucket is empty: a hash, a map look-up and the bucket.
func BenchmarkRateLimitedNonce(b *testing.B) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	c, err := New(Config{SecretKey: "sk_test_SECRET", BaseURL: "http://127.0.0.1:1", Burst: 1, Rate: 1, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	c.bucket.take()
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.HandshakePayload(ctx, "MADEUPNONCE"); !errors.Is(err, ErrRateLimited) {
			b.Fatal(err)
		}
	}
}
