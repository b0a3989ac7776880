/* Helpers shared by the allocator workloads in this folder: a seeded random sequence, block
 * filling and checking (so a workload also proves the allocator returned memory nobody else
 * writes), argument parsing and thread start-up. */
#ifndef UMRF_WORKLOAD_H
#define UMRF_WORKLOAD_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014). */
static inline uint64_t wl_next(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* A uniform value in [lo, hi]. */
static inline size_t wl_range(uint64_t *state, size_t lo, size_t hi) {
  return lo + (size_t)(wl_next(state) % (uint64_t)(hi - lo + 1));
}

/* Writes the block's tag into its first and last bytes (and its size into the bytes after the
 * first when it has room), so wl_check can tell whether anyone else wrote it. */
static inline void wl_fill(void *p, size_t size, uint8_t tag) {
  uint8_t *b = (uint8_t *)p;
  if (size == 0) return;
  b[0] = tag;
  b[size - 1] = tag;
  if (size >= sizeof(size_t) + 2) memcpy(b + 1, &size, sizeof(size_t));
}

/* Whether the block still holds what wl_fill wrote; counts a mismatch in *bad. */
static inline void wl_check(const void *p, size_t size, uint8_t tag, unsigned long *bad) {
  const uint8_t *b = (const uint8_t *)p;
  size_t stored = size;
  if (size == 0) return;
  if (size >= sizeof(size_t) + 2) memcpy(&stored, b + 1, sizeof(size_t));
  if (b[0] != tag || b[size - 1] != tag || stored != size) ++*bad;
}

/* argv[i] as a positive number, or the default. */
static inline long wl_arg(int argc, char **argv, int i, long fallback) {
  if (argc > i) {
    long v = strtol(argv[i], NULL, 10);
    if (v > 0) return v;
  }
  return fallback;
}

/* Calls fn(arg_i) on `n` threads, where arg_i = base + i * stride, and joins them. */
static inline void wl_threads(int n, void *(*fn)(void *), void *base, size_t stride) {
  pthread_t *ids = (pthread_t *)malloc(sizeof(pthread_t) * (size_t)n);
  if (ids == NULL) { fprintf(stderr, "out of memory for thread ids\n"); exit(2); }
  for (int i = 0; i < n; i++) {
    if (pthread_create(&ids[i], NULL, fn, (char *)base + (size_t)i * stride) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  }
  for (int i = 0; i < n; i++) pthread_join(ids[i], NULL);
  free(ids);
}

/* Every workload ends here: a deterministic result line, and exit status 1 on corruption. */
static inline int wl_finish(const char *name, unsigned long long checksum, unsigned long bad) {
  printf("%s: checksum %llu, corrupt blocks %lu\n", name, checksum, bad);
  return bad == 0 ? 0 : 1;
}

static inline void *wl_alloc(size_t size) {
  void *p = malloc(size);
  if (p == NULL && size != 0) { fprintf(stderr, "malloc(%zu) failed\n", size); exit(2); }
  return p;
}

#endif
