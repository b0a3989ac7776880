/* mstress: mimalloc's stress test (Daan Leijen, test/test-stress.c in microsoft/mimalloc,
 * MIT licence), as run by mimalloc-bench (`mstress N 50 25`). A re-implementation of the
 * workload, not the original source: for `rounds` rounds, `threads` fresh threads each do
 * `scale * 100` steps over a private array of live objects, allocating objects of mostly
 * small sizes (1 in 100 up to 64 KiB, 1 in 1000 up to 1 MiB), freeing random ones, and
 * swapping objects with a global transfer array (atomic exchange), so objects are freed by
 * other threads and survive the threads that made them.
 * Usage: mstress [threads=4] [scale=50] [rounds=10] */
#include "workload.h"

#define TRANSFERS 1000

struct obj { size_t size; uint8_t tag; };

static struct obj *transfer[TRANSFERS];
static long scale;
static unsigned long bad_total;
static unsigned long long made_total, freed_total;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct obj *make(uint64_t *rng, unsigned long long *made) {
  size_t size;
  uint64_t pick = wl_next(rng) % 1000;
  if (pick == 0) size = wl_range(rng, 64 * 1024, 1024 * 1024);
  else if (pick < 10) size = wl_range(rng, 1024, 64 * 1024);
  else size = wl_range(rng, sizeof(struct obj), 256);
  struct obj *o = (struct obj *)wl_alloc(size);
  o->size = size;
  o->tag = (uint8_t)wl_next(rng);
  ((uint8_t *)o)[size - 1] = o->tag;
  ++*made;
  return o;
}

static void drop(struct obj *o, unsigned long *bad, unsigned long long *freed) {
  if (o == NULL) return;
  ++*freed;
  if (((uint8_t *)o)[o->size - 1] != o->tag) ++*bad;
  free(o);
}

static void *stress(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  unsigned long bad = 0;
  unsigned long long made = 0, freed = 0;
  size_t cap = 256, len = 0;
  struct obj **live = (struct obj **)wl_alloc(sizeof(struct obj *) * cap);
  for (long step = 0; step < scale * 100; step++) {
    uint64_t what = wl_next(&rng) % 100;
    if (what < 50 || len == 0) {
      if (len == cap) {
        cap *= 2;
        live = (struct obj **)realloc(live, sizeof(struct obj *) * cap);
        if (live == NULL) { fprintf(stderr, "realloc failed\n"); exit(2); }
      }
      live[len++] = make(&rng, &made);
    } else if (what < 80) {
      size_t i = wl_range(&rng, 0, len - 1);
      drop(live[i], &bad, &freed);
      live[i] = live[--len];
    } else {
      size_t i = wl_range(&rng, 0, len - 1);
      size_t t = wl_range(&rng, 0, TRANSFERS - 1);
      live[i] = __atomic_exchange_n(&transfer[t], live[i], __ATOMIC_ACQ_REL);
      if (live[i] == NULL) live[i] = live[--len];
    }
  }
  while (len > 0) drop(live[--len], &bad, &freed);
  free(live);
  pthread_mutex_lock(&lock);
  bad_total += bad;
  made_total += made;
  freed_total += freed;
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = (int)wl_arg(argc, argv, 1, 4);
  scale = wl_arg(argc, argv, 2, 50);
  long rounds = wl_arg(argc, argv, 3, 10);
  for (long r = 0; r < rounds; r++)
    wl_threads(threads, stress, (void *)(uintptr_t)(1000 * (r + 1)), 1);
  for (int t = 0; t < TRANSFERS; t++) drop(transfer[t], &bad_total, &freed_total);
  /* Which objects cross threads depends on the schedule, so the checksum is the work done;
   * every object made must have been freed exactly once. */
  if (made_total != freed_total) ++bad_total;
  return wl_finish("mstress", (unsigned long long)threads * (unsigned long long)scale * 100 * (unsigned long long)rounds, bad_total);
}
