/* larson: a server-like workload after Larson and Krishnan, "Memory allocation for
 * long-running server applications" (ISMM 1998), as run by mimalloc-bench
 * (`larson 5 8 1000 5000 100 4141 N`). A re-implementation of the workload, not the original
 * source: each thread owns an array of `chunks` blocks of 8..1000 bytes and, for `rounds`
 * steps, frees a random block and allocates a new one in its place. Then it hands the array to
 * a new thread (the next generation), which frees blocks the previous thread allocated: blocks
 * outlive their allocating thread, and most frees are remote. Fixed work instead of the
 * original's fixed time.
 * Usage: larson [threads=4] [generations=8] [chunks=5000] [rounds=50000] */
#include "workload.h"

struct worker {
  void **blocks;
  size_t *sizes;
  long chunks, rounds;
  uint64_t rng;
  unsigned long long sum;
  unsigned long bad;
};

static void *step(void *arg) {
  struct worker *w = (struct worker *)arg;
  for (long r = 0; r < w->rounds; r++) {
    size_t i = wl_range(&w->rng, 0, (size_t)w->chunks - 1);
    wl_check(w->blocks[i], w->sizes[i], (uint8_t)w->sizes[i], &w->bad);
    free(w->blocks[i]);
    size_t size = wl_range(&w->rng, 8, 1000);
    w->blocks[i] = wl_alloc(size);
    w->sizes[i] = size;
    wl_fill(w->blocks[i], size, (uint8_t)size);
    w->sum += size;
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = (int)wl_arg(argc, argv, 1, 4);
  long generations = wl_arg(argc, argv, 2, 8);
  long chunks = wl_arg(argc, argv, 3, 5000);
  long rounds = wl_arg(argc, argv, 4, 50000);
  struct worker *w = (struct worker *)wl_alloc(sizeof(struct worker) * (size_t)threads);
  for (int t = 0; t < threads; t++) {
    w[t].blocks = (void **)wl_alloc(sizeof(void *) * (size_t)chunks);
    w[t].sizes = (size_t *)wl_alloc(sizeof(size_t) * (size_t)chunks);
    w[t].chunks = chunks;
    w[t].rounds = rounds;
    w[t].rng = 4141 + (uint64_t)t;
    w[t].sum = 0;
    w[t].bad = 0;
    for (long i = 0; i < chunks; i++) {
      w[t].sizes[i] = wl_range(&w[t].rng, 8, 1000);
      w[t].blocks[i] = wl_alloc(w[t].sizes[i]);
      wl_fill(w[t].blocks[i], w[t].sizes[i], (uint8_t)w[t].sizes[i]);
    }
  }
  /* Each generation runs on fresh threads: the arrays pass from exited threads to new ones. */
  for (long g = 0; g < generations; g++) wl_threads(threads, step, w, sizeof(struct worker));
  unsigned long long sum = 0;
  unsigned long bad = 0;
  for (int t = 0; t < threads; t++) {
    for (long i = 0; i < chunks; i++) {
      wl_check(w[t].blocks[i], w[t].sizes[i], (uint8_t)w[t].sizes[i], &w[t].bad);
      free(w[t].blocks[i]);
    }
    free(w[t].blocks);
    free(w[t].sizes);
    sum += w[t].sum;
    bad += w[t].bad;
  }
  free(w);
  return wl_finish("larson", sum, bad);
}
