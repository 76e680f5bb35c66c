package clustersync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"strings"
	"time"

	"github.com/caddyclerk/caddy-clerk-auth/internal/denylist"
	"go.uber.org/zap"
)

// One round's storage work: read and merge every instance's document,
// rewrite this instance's own, and prune documents with nothing left in
// force.

// read lists and loads every document, merges their denials and applies
// the other instances' new forget marks.
func (s *Syncer) read(ctx context.Context) error {
	keys, err := s.storage.List(ctx, s.opts.Prefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		keys, err = nil, nil // nobody has written yet
	}
	if err != nil {
		return fmt.Errorf("listing %s in storage: %w", s.opts.Prefix, err)
	}
	now := s.opts.Clock.Now()
	var merged []denylist.Entry
	var forgotten []string
	var failed error
	documents := 0
	present := make(map[string]bool, len(keys))
	for _, key := range keys {
		if !strings.HasSuffix(key, ".json") {
			continue
		}
		documents++
		present[key] = true
		raw, err := s.storage.Load(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned since the List
		}
		if err != nil {
			failed = cmpErr(failed, fmt.Errorf("loading %s from storage: %w", key, err))
			continue
		}
		if key == s.ownKey {
			s.checkOwn(raw, now)
		}
		h := maphash.Bytes(s.seed, raw)
		if seen, ok := s.seen[key]; ok && seen.hash == h {
			if seen.last > now.Unix() || key == s.ownKey {
				continue // merged and applied before, and entries only expire
			}
			s.prune(ctx, key)
			continue
		}
		c, err := decode(raw)
		if err != nil {
			s.stats.corrupt.Add(1)
			if !s.corrupt[key] {
				s.corrupt[key] = true
				s.log.Warn("skipping a corrupt denylist document; the others are merged", zap.String("key", key), zap.Error(err))
			}
			continue
		}
		delete(s.corrupt, key)
		for k, d := range c.denials {
			if d.until > now.Unix() {
				merged = append(merged, d.entry(k))
			}
		}
		if key != s.ownKey { // this instance dropped its own marks itself
			forgotten = append(forgotten, s.newMarks(key, c.forgets, now.Unix())...)
		}
		last := s.lastKept(c)
		if last <= now.Unix() && key != s.ownKey {
			s.prune(ctx, key)
			continue
		}
		s.seen[key] = seenDoc{h, last}
	}
	for key := range s.seen {
		if !present[key] {
			delete(s.seen, key)
		}
	}
	for key := range s.corrupt {
		if !present[key] {
			delete(s.corrupt, key)
		}
	}
	if !present[s.ownKey] {
		s.mu.Lock()
		s.adopted = true
		if s.written != nil { // deleted under it: write it again
			s.written, s.dirty = nil, true
		}
		s.mu.Unlock()
	}
	s.list.Add(merged...)
	s.pruneApplied(now.Unix())
	if s.opts.OnForget != nil {
		for _, id := range forgotten {
			s.opts.OnForget(id)
		}
	}
	if failed == nil {
		s.stats.documents.Store(int64(documents))
	}
	return failed
}

// checkOwn compares this instance's document in storage with the last one
// it wrote. On the first read, a Syncer that has written nothing takes the
// document over (a config reload in the same process); afterwards, a
// document changed or gone under it is written again.
func (s *Syncer) checkOwn(raw []byte, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.adopted && s.written == nil {
		s.adopted = true
		if c, err := decode(raw); err == nil {
			learned := len(s.local) > 0 || len(s.forgets) > 0 // by Deny or Forget before this read
			for k, d := range c.denials {
				if d.until > now.Unix() {
					s.local[k] = s.local[k].join(d)
				}
			}
			for id, at := range c.forgets {
				if s.markLive(at, now.Unix()) {
					s.forgets[id] = max(s.forgets[id], at)
				}
			}
			s.written, s.dirty = raw, learned
			return
		}
	}
	if !bytes.Equal(raw, s.written) {
		s.dirty = true
	}
}

// prune deletes a document whose denials all ended and whose marks all
// lapsed. A failure only leaves it for the next round.
func (s *Syncer) prune(ctx context.Context, key string) {
	if err := s.storage.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Debug("deleting an expired denylist document", zap.String("key", key), zap.Error(err))
		return
	}
	delete(s.seen, key)
	s.stats.pruned.Add(1)
}

// write publishes this instance's document if its denials or marks
// changed, or deletes it once none is left in force.
func (s *Syncer) write(ctx context.Context) error {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	s.adopted = true // a write from here on is the document's truth
	for k, d := range s.local {
		if d.until <= now.Unix() {
			delete(s.local, k)
			s.dirty = true
		}
	}
	if s.dropLapsedMarks(now.Unix()) {
		s.dirty = true
	}
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	empty := len(s.local) == 0 && len(s.forgets) == 0
	raw, err := encode(s.opts.InstanceID, now, contents{s.local, s.forgets})
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if empty {
		err = s.storage.Delete(ctx, s.ownKey)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		raw = nil
	} else {
		err = s.storage.Store(ctx, s.ownKey, raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.dirty = true
		return fmt.Errorf("writing %s to storage: %w", s.ownKey, err)
	}
	s.written = raw
	s.stats.writes.Add(1)
	return nil
}
