package tokens

import (
	"sync"
	"time"
)

// poolCacheTTL is how long a pod trusts what it read of a pool. The hot path
// resolves a pool's name to its id and settings without a round trip; a
// change made on another pod (new TTLs, a deleted pool) reaches this one
// within this time. Changes made on this pod apply at once.
const poolCacheTTL = time.Second

// poolCache maps live pool names to what the statements need of them. Only
// pools that exist are cached, so a pool created on another pod is found at
// its first use here.
type poolCache struct {
	mu sync.RWMutex
	m  map[string]cachedPool
}

type cachedPool struct {
	ref  poolRef
	read time.Time
}

func (c *poolCache) get(name string) (poolRef, bool) {
	c.mu.RLock()
	e, ok := c.m[name]
	c.mu.RUnlock()
	if !ok || time.Since(e.read) > poolCacheTTL {
		return poolRef{}, false
	}
	return e.ref, true
}

func (c *poolCache) put(ref poolRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]cachedPool)
	}
	c.m[ref.name] = cachedPool{ref: ref, read: time.Now()}
}

func (c *poolCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}
