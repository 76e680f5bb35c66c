package assertion

import (
	"sort"
	"time"
)

// coveredUntil is the end of the unbroken run of signing windows that
// starts at now: now itself if no key signs at now.
func coveredUntil(keys []*key, now time.Time) time.Time {
	t := now
	for progress := true; progress; {
		progress = false
		for _, k := range keys {
			if !t.Before(k.signFrom) && t.Before(k.signUntil) {
				t, progress = k.signUntil, true
			}
		}
	}
	return t
}

// due reports whether keys, read at now, need work from whoever holds the
// lock: a key to prune, or too short a run of signing windows ahead.
func due(keys []*key, now time.Time, o Options) bool {
	for _, k := range keys {
		if !now.Before(k.publishUntil) {
			return true
		}
	}
	return coveredUntil(keys, now).Before(now.Add(o.lead()))
}

// plan is the schedule that keys, read at now, should become: without the
// keys whose publication has ended, and with new keys chained after the
// last signing window until the schedule reaches o.lead() past now. A new
// key signs from the end of the run, or from now if no key signs now. It
// reports whether anything changed, and which keys it added and pruned.
func plan(keys []*key, now time.Time, o Options) (next, added, pruned []*key, err error) {
	for _, k := range keys {
		if now.Before(k.publishUntil) {
			next = append(next, k)
		} else {
			pruned = append(pruned, k)
		}
	}
	horizon := now.Add(o.lead())
	for t := coveredUntil(next, now); t.Before(horizon); t = coveredUntil(next, now) {
		k, err := generateKey(now, t, o)
		if err != nil {
			return nil, nil, nil, err
		}
		next = append(next, k)
		added = append(added, k)
	}
	sort.SliceStable(next, func(i, j int) bool { return next[i].signFrom.Before(next[j].signFrom) })
	return next, added, pruned, nil
}
