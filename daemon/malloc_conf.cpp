// jemalloc's built-in options for omnibusd and the benchmarks that stand in for it
// (docs/architecture.md: the allocator). jemalloc reads `malloc_conf` at its first
// allocation; MALLOC_CONF in the environment still overrides it.
//   narenas:4                 its default of four arenas per core gives eight here, each
//                             keeping pages of its own; two per core cost no measurable
//                             contention (the hot threads have thread caches) and keep the
//                             idle footprint inside its budget.
//   lg_tcache_nslots_mul:-1   half the cached objects per size class: about forty threads,
//                             and the caches alone held 3 MB of an idle daemon.
//   tcache_max:131072         freed objects up to 128 KiB stay in the thread's cache (default
//                             32 KiB). CLD2 allocates scratch buffers above 32 KiB on every
//                             call; from the arena that was a fifth of a short message's
//                             classification (bench_classify_route: p99 10-30 % lower).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "narenas:4,lg_tcache_nslots_mul:-1,tcache_max:131072";
}
