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
	// under mu when a channel gets its first member (or hold) and loses
	// its last (and no hold is left), so that the calls keep the order
	// of the changes. It must not block.
	interest func(ch string, on bool)
	// holds counts, by channel, the subscribes waiting for the engine to
	// join a link at a position (hold, release): the channel's interest
	// stays on while any wait, members or not.
	holds map[string]int
	// byWorker holds, by channel, the members by worker that membersBy
	// last made, until the channel's members change (forget): a publish
	// to an unchanged channel, on this node or from another, copies no
	// member set. Written by membersBy under mu's read lock and snapMu,
	// deleted under mu's write lock (which excludes the readers).
	byWorker map[string][][]*LinkRecord
	snapMu   sync.Mutex
}

func newHub() *hub {
	return &hub{channels: map[string]map[uint64]*LinkRecord{}, holds: map[string]int{},
		byWorker: map[string][][]*LinkRecord{}}
}

// forget drops ch's members by worker, whose members changed. h.mu is
// held for writing.
func (h *hub) forget(ch string) { delete(h.byWorker, ch) }

// hold keeps ch's interest on until release, before any member joins:
// a resume needs the engine subscribed to the channel first.
func (h *hub) hold(ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holds[ch] == 0 && h.channels[ch] == nil && h.interest != nil {
		h.interest(ch, true)
	}
	h.holds[ch]++
}

// release ends a hold; the channel's interest goes if it has no member
// and no other hold.
func (h *hub) release(ch string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holds[ch]--; h.holds[ch] > 0 {
		return
	}
	delete(h.holds, ch)
	if h.channels[ch] == nil && h.interest != nil {
		h.interest(ch, false)
	}
}

// isMember reports whether l is a member of ch.
func (h *hub) isMember(l *LinkRecord, ch string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.channels[ch][l.ID]
	return ok
}

// subscribe adds l to ch; it reports false if l was already a member.
func (h *hub) subscribe(l *LinkRecord, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.channels[ch]
	if m == nil {
		m = map[uint64]*LinkRecord{}
		h.channels[ch] = m
		if h.interest != nil && h.holds[ch] == 0 {
			h.interest(ch, true)
		}
	}
	if _, ok := m[l.ID]; ok {
		return false
	}
	m[l.ID] = l
	h.forget(ch)
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
	h.forget(ch)
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
			h.forget(ch)
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
	if h.interest != nil && h.holds[ch] == 0 {
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

// membersBy returns the members of ch by worker, n workers (every
// caller passes the gateway's count). The slices are shared by every
// caller until ch's members change, and read only: the copy of the
// member set is made once for all the publishes between two changes
// (byWorker), each worker's in one array of its size.
func (h *hub) membersBy(ch string, n int) [][]*LinkRecord {
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.snapMu.Lock()
	out, ok := h.byWorker[ch]
	h.snapMu.Unlock()
	if ok && len(out) == n {
		return out
	}
	m := h.channels[ch]
	out = make([][]*LinkRecord, n)
	if len(m) == 0 {
		return out
	}
	count := make([]int, n)
	for _, l := range m {
		count[l.w.id]++
	}
	all := make([]*LinkRecord, len(m))
	for id, k := range count {
		out[id], all = all[:0:k], all[k:]
	}
	for _, l := range m {
		out[l.w.id] = append(out[l.w.id], l)
	}
	h.snapMu.Lock()
	h.byWorker[ch] = out
	h.snapMu.Unlock()
	return out
}

// ChannelInfo is a channel's presence: its number of members (links),
// and of distinct users among them (the subjects of their tokens; links
// without one are not counted).
type ChannelInfo struct {
	Name    string `json:"name"`
	Members int    `json:"members"`
	Users   int    `json:"users"`
}

func (h *hub) list() []ChannelInfo {
	ps := h.presence()
	out := make([]ChannelInfo, len(ps))
	for i, p := range ps {
		out[i] = ChannelInfo{p.Name, p.Members, len(p.Users)}
	}
	return out
}

// channelPresence is a channel's members and its distinct users, by
// name: what a node tells the others, so that users are counted once
// across nodes.
//
// Concurrency: a value.
type channelPresence struct {
	Name    string   `json:"name"`
	Members int      `json:"members"`
	Users   []string `json:"users,omitempty"`
}

// presence returns every channel's presence, by name.
func (h *hub) presence() []channelPresence {
	h.mu.RLock()
	out := make([]channelPresence, 0, len(h.channels))
	for name, m := range h.channels {
		p := channelPresence{Name: name, Members: len(m)}
		seen := map[string]bool{}
		for _, l := range m {
			if l.User != "" && !seen[l.User] {
				seen[l.User] = true
				p.Users = append(p.Users, l.User)
			}
		}
		out = append(out, p)
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
