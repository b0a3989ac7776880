/* cache-scratch: passive false sharing, after the Hoard benchmark of Berger, McKinley, Blumofe
 * and Wilson, "Hoard: A Scalable Memory Allocator for Multithreaded Applications" (ASPLOS
 * 2000), as run by mimalloc-bench (`cache-scratch N 1000 1 2000000 0`). A re-implementation of
 * the workload, not the original source: the main thread allocates one small object per
 * worker and hands it over; each worker frees it, then `iterations` times allocates an object
 * of the same size, writes it `repetitions` times and frees it. An allocator that hands
 * neighbouring bytes of one cache line to different threads makes every write bounce the line.
 * Usage: cache-scratch [threads=4] [iterations=1000] [object size=8] [repetitions=20000] */
#include "workload.h"

struct worker { char *given; long iterations, size, repetitions; };

static void *scratch(void *arg) {
  struct worker *w = (struct worker *)arg;
  free(w->given);
  for (long i = 0; i < w->iterations; i++) {
    volatile char *obj = (volatile char *)wl_alloc((size_t)w->size);
    for (long r = 0; r < w->repetitions; r++)
      for (long b = 0; b < w->size; b++) obj[b] = (char)(obj[b] + 1);
    free((void *)obj);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = (int)wl_arg(argc, argv, 1, 4);
  long iterations = wl_arg(argc, argv, 2, 1000);
  long size = wl_arg(argc, argv, 3, 8);
  long repetitions = wl_arg(argc, argv, 4, 20000);
  struct worker *w = (struct worker *)wl_alloc(sizeof(struct worker) * (size_t)threads);
  for (int t = 0; t < threads; t++) {
    w[t].given = (char *)wl_alloc((size_t)size);
    memset(w[t].given, 0, (size_t)size);
    w[t].iterations = iterations;
    w[t].size = size;
    w[t].repetitions = repetitions;
  }
  wl_threads(threads, scratch, w, sizeof(struct worker));
  unsigned long long sum = 0;
  for (int t = 0; t < threads; t++) sum += (unsigned long long)w[t].iterations;
  free(w);
  /* The bytes' final values depend on what the allocator handed out, so the checksum counts
   * the objects, not their contents. */
  return wl_finish("cache-scratch", sum, 0);
}
