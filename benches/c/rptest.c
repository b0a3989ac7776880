/* rptest: rpmalloc's benchmark (Mattias Jansson, rpmalloc-benchmark, public domain / MIT), as
 * run by mimalloc-bench (`rptest N 0 1 2 500 1000 100 8 16000`). A re-implementation of the
 * workload, not the original source: each of `threads` threads runs `loops` loops; a loop
 * allocates `blocks` blocks of 8..16000 bytes (sizes skewed to the small end), touches them,
 * frees every other one, and hands the rest to the next thread through a one-slot mailbox per
 * thread; each thread frees what its neighbour handed it. Cross-thread frees at a steady rate.
 * Usage: rptest [threads=4] [loops=400] [blocks=1000] */
#include "workload.h"

struct handoff { pthread_mutex_t lock; void **blocks; size_t *sizes; long count; };

static struct handoff *mailboxes;
static int threads;
static long loops, blocks;
static unsigned long long sum_total;
static unsigned long bad_total;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;

static void release(struct handoff *h, unsigned long *bad) {
  for (long i = 0; i < h->count; i++) {
    wl_check(h->blocks[i], h->sizes[i], (uint8_t)h->sizes[i], bad);
    free(h->blocks[i]);
  }
  free(h->blocks);
  free(h->sizes);
  h->blocks = NULL;
  h->sizes = NULL;
  h->count = 0;
}

static void *run(void *arg) {
  int me = (int)(uintptr_t)arg;
  uint64_t rng = 0x12345u + (uint64_t)me;
  unsigned long bad = 0;
  unsigned long long sum = 0;
  for (long l = 0; l < loops; l++) {
    void **mine = (void **)wl_alloc(sizeof(void *) * (size_t)blocks);
    size_t *sizes = (size_t *)wl_alloc(sizeof(size_t) * (size_t)blocks);
    for (long i = 0; i < blocks; i++) {
      /* The smaller of two uniform draws: small sizes are common, large ones occur. */
      size_t a = wl_range(&rng, 8, 16000), b = wl_range(&rng, 8, 16000);
      sizes[i] = a < b ? a : b;
      mine[i] = wl_alloc(sizes[i]);
      wl_fill(mine[i], sizes[i], (uint8_t)sizes[i]);
      sum += sizes[i];
    }
    long kept = 0;
    for (long i = 0; i < blocks; i++) {
      if (i % 2 == 0) {
        wl_check(mine[i], sizes[i], (uint8_t)sizes[i], &bad);
        free(mine[i]);
      } else {
        mine[kept] = mine[i];
        sizes[kept++] = sizes[i];
      }
    }
    struct handoff *next = &mailboxes[(me + 1) % threads];
    pthread_mutex_lock(&next->lock);
    if (next->blocks != NULL) release(next, &bad); /* not yet taken: free it here */
    next->blocks = mine;
    next->sizes = sizes;
    next->count = kept;
    pthread_mutex_unlock(&next->lock);
    struct handoff *own = &mailboxes[me];
    pthread_mutex_lock(&own->lock);
    if (own->blocks != NULL) release(own, &bad);
    pthread_mutex_unlock(&own->lock);
  }
  pthread_mutex_lock(&total_lock);
  bad_total += bad;
  sum_total += sum;
  pthread_mutex_unlock(&total_lock);
  return NULL;
}

int main(int argc, char **argv) {
  threads = (int)wl_arg(argc, argv, 1, 4);
  loops = wl_arg(argc, argv, 2, 400);
  blocks = wl_arg(argc, argv, 3, 1000);
  mailboxes = (struct handoff *)calloc((size_t)threads, sizeof(struct handoff));
  if (mailboxes == NULL) { fprintf(stderr, "calloc failed\n"); return 2; }
  for (int t = 0; t < threads; t++) pthread_mutex_init(&mailboxes[t].lock, NULL);
  wl_threads(threads, run, NULL, 1);
  for (int t = 0; t < threads; t++) release(&mailboxes[t], &bad_total);
  free(mailboxes);
  return wl_finish("rptest", sum_total, bad_total);
}
