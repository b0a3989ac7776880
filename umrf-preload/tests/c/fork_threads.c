/* Threads allocate and free while the main thread forks; each child allocates, frees, checks
 * and exits. Under the preload library this must neither deadlock nor corrupt. Also: blocks
 * allocated by threads that have exited are freed (and reused) by the main thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg) {
  unsigned seed = (unsigned)(size_t)arg;
  while (!stop) {
    void *p[32];
    for (int i = 0; i < 32; i++) { p[i] = malloc(16 + (seed = seed * 1103515245u + 12345u) % 4000); memset(p[i], 1, 16); }
    for (int i = 0; i < 32; i++) free(p[i]);
  }
  return NULL;
}

static void *leave_blocks(void *arg) {
  void **out = arg;
  for (int i = 0; i < 1000; i++) { out[i] = malloc(48); memset(out[i], 7, 48); }
  return NULL;
}

int main(void) {
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, churn, (void *)(size_t)(i + 1));
  int children_ok = 0;
  for (int f = 0; f < 20; f++) {
    pid_t pid = fork();
    if (pid == 0) {
      char *q = malloc(1000);
      for (int i = 0; i < 1000; i++) free(malloc((size_t)i + 1));
      memset(q, 3, 1000);
      _exit(q[999] == 3 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) children_ok++;
  }
  stop = 1;
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  static void *left[1000];
  pthread_t leaver;
  pthread_create(&leaver, NULL, leave_blocks, left);
  pthread_join(leaver, NULL);
  int kept = 1;
  for (int i = 0; i < 1000; i++) { kept = kept && ((unsigned char *)left[i])[47] == 7; free(left[i]); }
  printf("children ok: %d of 20; blocks of an exited thread intact: %s\n", children_ok, kept ? "yes" : "no");
  return children_ok == 20 && kept ? 0 : 1;
}
