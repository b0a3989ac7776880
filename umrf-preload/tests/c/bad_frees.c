/* Frees the C library would abort on, run only under the preload library: a double free, a
 * free of an interior pointer and a realloc of one, each refused (and counted), and the
 * block pushed once, so two later allocations of its size get two different blocks. A thread
 * frees a block of the main thread twice: the remote double free is refused too. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static char *volatile shared;

static void *free_twice(void *arg) {
  (void)arg;
  free(shared);
  free(shared);
  return NULL;
}

int main(void) {
  char *volatile p = malloc(100);
  free(p);
  free(p);
  char *volatile q = malloc(100);
  free(q + 8);
  if (realloc(q + 8, 200) != NULL) return 1;
  free(q);
  char *a = malloc(100), *b = malloc(100);
  if (a == b) return 2;
  shared = malloc(300);
  pthread_t t;
  if (pthread_create(&t, NULL, free_twice, NULL) != 0) return 3;
  pthread_join(t, NULL);
  free(shared);
  free(a);
  free(b);
  puts("refused");
  return 0;
}
