// Execs PROGRAM from a thread that is not the thread-group leader, after printing
// "pid tid" of that thread, so the test can check which ids the exec event carries.
// usage: thread_exec PROGRAM [ARGS...]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

static char **args;

static void *run(void *unused)
{
	printf("%d %ld\n", getpid(), (long)syscall(SYS_gettid));
	fflush(stdout);
	execv(args[0], args);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;
	args = &argv[1];
	pthread_create(&t, NULL, run, NULL);
	pthread_join(t, NULL);
	return 1; /* only reached if execv failed */
}
