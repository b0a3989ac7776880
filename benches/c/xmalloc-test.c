/* xmalloc-test: producer/consumer allocation, after the workload of Lever and Boreham,
 * "malloc() Performance in a Multithreaded Linux Environment" (USENIX 2000), as run by
 * mimalloc-bench (`xmalloc-test -w N -t 5 -s 64`). A re-implementation of the workload, not
 * the original source: `threads` producers allocate batches of small blocks (8..64 bytes) and
 * hand each batch to a consumer through a shared queue; `threads` consumers free them. Every
 * block is freed by a thread other than the one that allocated it. Fixed work instead of the
 * original's fixed time, so runs compare by elapsed time.
 * Usage: xmalloc-test [threads=4] [batches per producer=5000] */
#include "workload.h"

#define BATCH 64

struct batch { struct batch *next; void *blocks[BATCH]; size_t sizes[BATCH]; };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static struct batch *queue;
static long producers_left;
static long batches;
static unsigned long long checksum;
static unsigned long bad;

static void *produce(void *arg) {
  uint64_t rng = (uint64_t)(uintptr_t)arg;
  unsigned long long sum = 0;
  for (long i = 0; i < batches; i++) {
    struct batch *b = (struct batch *)wl_alloc(sizeof *b);
    for (int j = 0; j < BATCH; j++) {
      size_t size = wl_range(&rng, 8, 64);
      b->blocks[j] = wl_alloc(size);
      b->sizes[j] = size;
      wl_fill(b->blocks[j], size, (uint8_t)size);
      sum += size;
    }
    pthread_mutex_lock(&lock);
    b->next = queue;
    queue = b;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  checksum += sum;
  producers_left--;
  pthread_cond_broadcast(&ready);
  pthread_mutex_unlock(&lock);
  return NULL;
}

static void *consume(void *arg) {
  unsigned long mine = 0;
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&lock);
    while (queue == NULL && producers_left > 0) pthread_cond_wait(&ready, &lock);
    struct batch *b = queue;
    if (b != NULL) queue = b->next;
    pthread_mutex_unlock(&lock);
    if (b == NULL) break;
    for (int j = 0; j < BATCH; j++) {
      wl_check(b->blocks[j], b->sizes[j], (uint8_t)b->sizes[j], &mine);
      free(b->blocks[j]);
    }
    free(b);
  }
  pthread_mutex_lock(&lock);
  bad += mine;
  pthread_mutex_unlock(&lock);
  return NULL;
}

struct role { int producer; uint64_t seed; };

static void *start(void *arg) {
  struct role *r = (struct role *)arg;
  return r->producer ? produce((void *)(uintptr_t)r->seed) : consume(NULL);
}

int main(int argc, char **argv) {
  int threads = (int)wl_arg(argc, argv, 1, 4);
  batches = wl_arg(argc, argv, 2, 5000);
  producers_left = threads;
  struct role *roles = (struct role *)wl_alloc(sizeof(struct role) * 2 * (size_t)threads);
  for (int i = 0; i < 2 * threads; i++) {
    roles[i].producer = i % 2 == 0;
    roles[i].seed = 0x5eed0000u + (uint64_t)i;
  }
  wl_threads(2 * threads, start, roles, sizeof(struct role));
  free(roles);
  return wl_finish("xmalloc-test", checksum, bad);
}
