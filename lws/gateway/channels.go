package gateway

import (
	"sort"
	"sync"
)

// maxChannel is the longest channel name, in bytes: a channel is 1 to
// maxChannel bytes wherever its name comes from (a rule, a message's
// field, the admin API).
const maxChannel = 256

func validChannel(ch string) bool { return ch != "" && len(ch) <= maxChannel }

// hub holds channel memberships: a channel exists while it has a member
// (created on first subscribe, as Centrifugo's are).
//
// Concurrency: safe from any goroutine.
type hub struct {
	mu       sync.RWMutex
	channels map[string]map[uint64]*LinkRecord
	// interest, when set (in a cluster, before any link opens), is told
	// under mu when a channel gets its first member and loses its last,
	// so that the calls keep the order of the changes. It must not block.
	interest func(ch string, on bool)
}

func newHub() *hub { return &hub{channels: map[string]map[uint64]*LinkRecord{}} }

// subscribe adds l to ch; it reports false if l was already a member.
func (h *hub) subscribe(l *LinkRecord, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.channels[ch]
	if m == nil {
		m = map[uint64]*LinkRecord{}
		h.channels[ch] = m
		if h.interest != nil {
			h.interest(ch, true)
		}
	}
	if _, ok := m[l.ID]; ok {
		return false
	}
	m[l.ID] = l
	l.mu.Lock()
	if l.channels == nil {
		l.channels = map[string]struct{}{}
	}
	l.channels[ch] = struct{}{}
	l.mu.Unlock()
	return true
}

// unsubscribe removes l from ch; it reports false if l was not a member.
func (h *hub) unsubscribe(l *LinkRecord, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.channels[ch]
	if _, ok := m[l.ID]; !ok {
		return false
	}
	delete(m, l.ID)
	if len(m) == 0 {
		h.drop(ch)
	}
	l.mu.Lock()
	delete(l.channels, ch)
	l.mu.Unlock()
	return true
}

// leave removes l from every channel (its link is gone).
func (h *hub) leave(l *LinkRecord) {
	l.mu.Lock()
	chs := l.channels
	l.channels = nil
	l.mu.Unlock()
	if len(chs) == 0 {
		return
	}
	h.mu.Lock()
	for ch := range chs {
		if m := h.channels[ch]; m != nil {
			delete(m, l.ID)
			if len(m) == 0 {
				h.drop(ch)
			}
		}
	}
	h.mu.Unlock()
}

// drop deletes ch, which has no member left. h.mu is held.
func (h *hub) drop(ch string) {
	delete(h.channels, ch)
	if h.interest != nil {
		h.interest(ch, false)
	}
}

// members returns a snapshot of ch's links.
func (h *hub) members(ch string) []*LinkRecord {
	h.mu.RLock()
	defer h.mu.RUnlock()
	m := h.channels[ch]
	out := make([]*LinkRecord, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	return out
}

// ChannelInfo is a channel and its number of members.
type ChannelInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
}

func (h *hub) list() []ChannelInfo {
	h.mu.RLock()
	out := make([]ChannelInfo, 0, len(h.channels))
	for name, m := range h.channels {
		out = append(out, ChannelInfo{name, len(m)})
	}
	h.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (h *hub) len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.channels)
}
