package registry

// Cached reports whether r's cache has an entry for name (whether or not
// WhereIs vouches for it), for tests that show WhereIs refusing an entry
// the store's watch has not dropped yet.
func Cached(r *Registry, name string) bool { return r.cache.get(name) != nil }
