/* The malloc family's contract under LD_PRELOAD: results, errno, alignment, content kept by
 * realloc, and bad input that must neither crash nor corrupt. Prints one line per check; exits
 * non-zero if any failed. Its output is the same with and without the preload library. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static void check(int ok, const char *what) {
  printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) failures++;
}

/* Sizes the compiler cannot see, so it does not warn about the overflows on purpose. */
static volatile size_t huge = SIZE_MAX / 2;

int main(void) {
  char *p = malloc(100);
  check(p != NULL && ((uintptr_t)p % 16) == 0, "malloc(100) is 16-byte aligned");
  check(malloc_usable_size(p) >= 100, "malloc_usable_size covers the request");
  memset(p, 'x', 100);
  p = realloc(p, 5000);
  check(p != NULL && p[0] == 'x' && p[99] == 'x', "realloc to 5000 keeps the bytes");
  p = realloc(p, 200000);
  check(p != NULL && p[0] == 'x' && p[99] == 'x', "realloc beyond 64 KiB keeps the bytes");
  p = realloc(p, 10);
  check(p != NULL && p[9] == 'x', "realloc down keeps the bytes");
  free(p);

  errno = 0;
  check(calloc(huge, 3) == NULL && errno == ENOMEM, "calloc overflow: NULL and ENOMEM");
  int *zeros = calloc(1000, sizeof(int));
  int all_zero = zeros != NULL;
  for (int i = 0; all_zero && i < 1000; i++) all_zero = zeros[i] == 0;
  check(all_zero, "calloc memory is zero");
  /* Reuse: a dirty block freed and taken again through calloc is zeroed too. */
  memset(zeros, 0xff, 1000 * sizeof(int));
  free(zeros);
  zeros = calloc(1000, sizeof(int));
  all_zero = zeros != NULL;
  for (int i = 0; all_zero && i < 1000; i++) all_zero = zeros[i] == 0;
  check(all_zero, "calloc of a reused block is zero");
  free(zeros);

  errno = 0;
  void *r = malloc(16);
  void *grown = reallocarray(r, huge, 4);
  check(grown == NULL && errno == ENOMEM, "reallocarray overflow: NULL and ENOMEM");
  if (grown == NULL) free(r); /* the old block is intact after the failure */

  void *a = NULL;
  check(posix_memalign(&a, 3, 64) == EINVAL && a == NULL, "posix_memalign(3): EINVAL");
  check(posix_memalign(&a, 4, 64) == EINVAL, "posix_memalign(4) (below sizeof(void *)): EINVAL");
  check(posix_memalign(&a, 256, 1000) == 0 && ((uintptr_t)a % 256) == 0, "posix_memalign(256)");
  free(a);
  check(posix_memalign(&a, 1 << 16, 10) == 0 && ((uintptr_t)a % (1 << 16)) == 0, "posix_memalign(64 KiB)");
  free(a);
  errno = 0;
  /* C17 and POSIX.1-2024: NULL and EINVAL (umrf, glibc >= 2.38); older glibc rounds up. */
  void *odd = aligned_alloc(3, 64);
  check(odd == NULL ? errno == EINVAL : 1, "aligned_alloc(3): NULL and EINVAL, or a block");
  free(odd);
  void *b = aligned_alloc(64, 640);
  check(b != NULL && ((uintptr_t)b % 64) == 0, "aligned_alloc(64)");
  free(b);
  void *m = memalign(4096, 100);
  check(m != NULL && ((uintptr_t)m % 4096) == 0, "memalign(4096)");
  free(m);
  long page = sysconf(_SC_PAGESIZE);
  void *v = valloc(10);
  check(v != NULL && ((uintptr_t)v % (uintptr_t)page) == 0, "valloc is page aligned");
  free(v);
  void *pv = pvalloc(10);
  check(pv != NULL && ((uintptr_t)pv % (uintptr_t)page) == 0 && malloc_usable_size(pv) >= (size_t)page,
        "pvalloc rounds up to a page");
  free(pv);
  free(NULL);
  void *z = malloc(0);
  check(z != NULL, "malloc(0) is a unique pointer");
  free(z);

  /* Many sizes at once, written and checked, freed in another order. */
  enum { N = 5000 };
  static unsigned char *blocks[N];
  int intact = 1;
  for (int i = 0; i < N; i++) {
    size_t size = 1 + (size_t)(i * 7919) % 70000;
    blocks[i] = malloc(size);
    if (!blocks[i]) { intact = 0; break; }
    blocks[i][0] = (unsigned char)i;
    blocks[i][size - 1] = (unsigned char)i;
  }
  for (int i = N - 1; intact && i >= 0; i -= 2) {
    size_t size = 1 + (size_t)(i * 7919) % 70000;
    intact = blocks[i][0] == (unsigned char)i && blocks[i][size - 1] == (unsigned char)i;
    free(blocks[i]);
  }
  for (int i = N - 2; i >= 0; i -= 2) free(blocks[i]);
  check(intact, "5000 blocks of 1..70000 bytes keep their bytes");

  printf(failures ? "%d check(s) failed\n" : "all checks passed\n", failures);
  return failures != 0;
}
