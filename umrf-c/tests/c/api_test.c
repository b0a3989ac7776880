/* Exercises every function of umrf.h from C, with good and bad input. Prints one line per
 * check and exits non-zero at the first failure. Run by tests/c_api.rs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umrf.h"

static int failures;

#define CHECK(cond, what)                                                              \
  do {                                                                                 \
    if (cond) {                                                                        \
      printf("ok: %s\n", what);                                                        \
    } else {                                                                           \
      printf("FAILED: %s (line %d; last error %d: %s)\n", what, __LINE__,              \
             umrf_last_error_code(), umrf_last_error());                               \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

#define THREADS 4
#define PER_THREAD 2000

static void *worker(void *arg) {
  int core = (int)(size_t)arg;
  void *blocks[64];
  for (int round = 0; round < PER_THREAD / 64; round++) {
    for (int i = 0; i < 64; i++) {
      size_t size = 1 + (size_t)((round * 64 + i) * 37) % 4000;
      blocks[i] = umrf_alloc(size, core);
      if (blocks[i] == NULL) return (void *)1;
      memset(blocks[i], core + 1, size);
    }
    for (int i = 0; i < 64; i++) {
      if (((unsigned char *)blocks[i])[0] != core + 1) return (void *)2;
      if (umrf_free(blocks[i]) != UMRF_OK) return (void *)3;
    }
  }
  return NULL;
}

/* A block freed on another thread than the one that allocated it. */
static void *remote_free(void *arg) { return (void *)(size_t)umrf_free(arg); }

int main(void) {
  umrf_config config = {.cores = THREADS, .bytes_per_class = 256 * 1024,
                        .fallback_bytes_per_class = 128 * 1024};
  CHECK(umrf_init(&config) == UMRF_OK, "umrf_init with 4 cores");
  CHECK(umrf_init(&config) == UMRF_OK, "umrf_init again with the same configuration");
  umrf_config other = config;
  other.cores = 7;
  CHECK(umrf_init(&other) == UMRF_ERR_ALREADY_INITIALIZED, "umrf_init with another configuration is refused");
  CHECK(strstr(umrf_last_error(), "already built") != NULL, "and the message says why");

  /* Allocation, alignment, writing, ownership. */
  char *p = umrf_alloc(100, 1);
  CHECK(p != NULL, "umrf_alloc(100, 1)");
  CHECK(((size_t)p % UMRF_BLOCK_ALIGN) == 0, "blocks are 64-byte aligned");
  memset(p, 0xab, 100);
  umrf_owner_info info;
  memset(&info, 0, sizeof info);
  CHECK(umrf_owner_of(p, &info) == UMRF_OK, "umrf_owner_of a live block");
  CHECK(info.core == 1 && info.holder_core == 1 && info.offset == 0, "its core and holder are 1");
  CHECK(info.block_size == 128 && info.state == UMRF_STATE_IN_FLIGHT, "a 128-byte block held by the core's table");
  CHECK(umrf_owner_of(p + 10, &info) == UMRF_OK && info.offset == 10 && info.holder_core == -1,
        "umrf_owner_of an interior address gives the offset");

  /* Bad input: each is an error code and a message, never a crash. */
  CHECK(umrf_alloc(0, 0) == NULL && umrf_last_error_code() == UMRF_ERR_ZERO_SIZE, "umrf_alloc(0) is refused");
  CHECK(umrf_alloc(UMRF_MAX_ALLOC + 1, 0) == NULL && umrf_last_error_code() == UMRF_ERR_TOO_LARGE,
        "an oversized request is refused");
  CHECK(strstr(umrf_last_error(), "malloc") != NULL, "and the message names the remedy");
  CHECK(umrf_alloc(8, THREADS) == NULL && umrf_last_error_code() == UMRF_ERR_CORE_OUT_OF_RANGE,
        "core id == cores is out of range");
  CHECK(umrf_alloc(8, -1) == NULL && umrf_last_error_code() == UMRF_ERR_CORE_OUT_OF_RANGE,
        "a negative core id is out of range");
  CHECK(umrf_reset_pool(99) == UMRF_ERR_CORE_OUT_OF_RANGE, "umrf_reset_pool(99) is out of range");
  CHECK(umrf_free(NULL) == UMRF_OK, "umrf_free(NULL) does nothing");
  int on_stack = 0;
  CHECK(umrf_free(&on_stack) == UMRF_ERR_FOREIGN_POINTER, "freeing a stack address is refused");
  void *from_malloc = malloc(64);
  CHECK(umrf_free(from_malloc) == UMRF_ERR_FOREIGN_POINTER, "freeing a malloc pointer is refused");
  free(from_malloc);
  CHECK(umrf_owner_of(&on_stack, &info) == UMRF_ERR_FOREIGN_POINTER, "a stack address has no owner");
  CHECK(umrf_owner_of(p, NULL) == UMRF_ERR_NULL, "umrf_owner_of with a NULL info");
  CHECK(umrf_free(p + 1) == UMRF_ERR_INTERIOR_POINTER, "freeing an interior pointer is refused");
  CHECK((unsigned char)p[99] == 0xab, "and the block is untouched");
  CHECK(umrf_free(p) == UMRF_OK, "umrf_free of the block");
  CHECK(umrf_free(p) == UMRF_ERR_DOUBLE_FREE, "a double free is detected");
  CHECK(strstr(umrf_last_error(), "not allocated") != NULL, "and reported");
  CHECK(umrf_owner_of(p, &info) == UMRF_OK && info.state == UMRF_STATE_FREE && info.holder_core == -1,
        "the freed block is free again");

  /* Reset: every block of the core at once; other cores untouched. */
  void *keep = umrf_alloc(64, 3);
  void *blocks[100];
  for (int i = 0; i < 100; i++) blocks[i] = umrf_alloc(64 + (size_t)i * 10, 2);
  CHECK(blocks[99] != NULL, "100 blocks on core 2");
  CHECK(umrf_reset_pool(2) == 100, "umrf_reset_pool(2) releases the 100");
  CHECK(umrf_reset_pool(2) == 0, "a second reset releases nothing");
  CHECK(umrf_free(blocks[0]) == UMRF_ERR_DOUBLE_FREE, "freeing after the reset is a double free");
  CHECK(umrf_owner_of(keep, &info) == UMRF_OK && info.holder_core == 3, "core 3's block survives");
  CHECK(umrf_free(keep) == UMRF_OK, "and frees normally");

  /* Exhaustion degrades to the fallback pool, then fails cleanly. */
  int served = 0;
  void *big[64];
  for (int i = 0; i < 64; i++) {
    big[i] = umrf_alloc(UMRF_MAX_ALLOC, 0);
    if (big[i] != NULL) served++;
  }
  /* 4 blocks of 64 KiB on core 0 (256 KiB), then the 2 of a fallback slot (128 KiB). */
  CHECK(served == 6, "64 KiB blocks: 4 from core 0, 2 from a slot of the fallback pool");
  CHECK(umrf_last_error_code() == UMRF_ERR_EXHAUSTED, "then exhaustion is reported");
  for (int i = 0; i < 64; i++) umrf_free(big[i]);
  CHECK(umrf_alloc(UMRF_MAX_ALLOC, 0) != NULL, "after freeing, core 0 serves again");
  umrf_reset_pool(0);

  /* Threads: one per core, and a remote free. */
  pthread_t ids[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&ids[t], NULL, worker, (void *)(size_t)t);
  int thread_errors = 0;
  for (int t = 0; t < THREADS; t++) {
    void *rc;
    pthread_join(ids[t], &rc);
    if (rc != NULL) thread_errors++;
  }
  CHECK(thread_errors == 0, "4 threads allocate, write, check and free on their cores");
  void *sent = umrf_alloc(500, 1);
  pthread_t remote;
  pthread_create(&remote, NULL, remote_free, sent);
  void *remote_rc;
  pthread_join(remote, &remote_rc);
  CHECK(remote_rc == (void *)(size_t)UMRF_OK, "a block allocated here is freed by another thread");

  /* Statistics, snprintf-style. */
  int64_t need = umrf_stats_json(NULL, 0);
  CHECK(need > 0, "umrf_stats_json(NULL, 0) gives the length");
  char *json = malloc((size_t)need + 1);
  CHECK(umrf_stats_json(json, (size_t)need + 1) == need && json[need] == '\0', "the whole text fits");
  CHECK(strstr(json, "\"double_frees\":2") != NULL, "the double frees are counted");
  CHECK(strstr(json, "\"foreign_frees\":2") != NULL, "the foreign frees are counted");
  CHECK(strstr(json, "\"core_out_of_range\":3") != NULL, "the bad core ids are counted");
  char small[8];
  CHECK(umrf_stats_json(small, sizeof small) == need && strlen(small) == 7, "a short buffer is cut and terminated");
  CHECK(umrf_stats_json(NULL, 5) == UMRF_ERR_NULL, "a NULL buffer with a length is refused");
  printf("stats: %s\n", json);
  free(json);

  if (failures) printf("%d check(s) failed\n", failures);
  else printf("all checks passed\n");
  return failures ? 1 : 0;
}
