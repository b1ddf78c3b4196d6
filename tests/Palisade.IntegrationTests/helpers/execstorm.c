// Fork+exec a program N times across W workers as fast as the machine allows, printing
// each child's pid so the test can check that every exec was reported.
// usage: execstorm N WORKERS PROGRAM [ARGS...]
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s N WORKERS PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
	long n = atol(argv[1]);
	int workers = atoi(argv[2]);
	/* One write per line: writes up to PIPE_BUF are atomic, so the workers never split each other's lines. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int w = 0; w < workers; w++) {
		pid_t worker = fork();
		if (worker == 0) {
			for (long i = w; i < n; i += workers) {
				pid_t child = fork();
				if (child == 0) {
					execv(argv[3], &argv[3]);
					_exit(127);
				}
				printf("%d\n", child);
				waitpid(child, NULL, 0);
			}
			fflush(stdout);
			_exit(0);
		}
	}
	int status, failed = 0;
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	return failed;
}
