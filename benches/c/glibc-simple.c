/* glibc-simple: the single-threaded malloc/free loops of glibc's benchtests/bench-malloc-simple.c
 * (Wilco Dijkstra, GNU C Library, LGPL-2.1+), as run by mimalloc-bench. A re-implementation of
 * the workload, not the original source: for each block size (16, 64, 256, 1024, 4096 bytes)
 * and batch (25, 100, 400, 1600 blocks), allocate the whole batch, write each block, then free
 * it, `iterations` times.
 * Usage: glibc-simple [iterations=300] */
#include "workload.h"

int main(int argc, char **argv) {
  long iterations = wl_arg(argc, argv, 1, 300);
  static const size_t sizes[] = {16, 64, 256, 1024, 4096};
  static const long batches[] = {25, 100, 400, 1600};
  void *blocks[1600];
  unsigned long long sum = 0;
  unsigned long bad = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
      for (long it = 0; it < iterations; it++) {
        for (long i = 0; i < batches[b]; i++) {
          blocks[i] = wl_alloc(sizes[s]);
          wl_fill(blocks[i], sizes[s], (uint8_t)i);
        }
        for (long i = 0; i < batches[b]; i++) {
          wl_check(blocks[i], sizes[s], (uint8_t)i, &bad);
          free(blocks[i]);
        }
        sum += (unsigned long long)batches[b] * sizes[s];
      }
    }
  }
  return wl_finish("glibc-simple", sum, bad);
}
