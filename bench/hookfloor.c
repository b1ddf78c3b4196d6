// Attaches bench/hookfloor.bpf.c's empty program to sys_exit, runs the command given, detaches.
// usage: hookfloor OBJECT COMMAND [ARGS...]   (root)
#include <bpf/libbpf.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s OBJECT COMMAND [ARGS...]\n", argv[0]);
		return 2;
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj) != 0) {
		fprintf(stderr, "hookfloor: cannot load %s\n", argv[1]);
		return 1;
	}
	struct bpf_link *link = bpf_program__attach(bpf_object__find_program_by_name(obj, "hookfloor"));
	if (!link) {
		fprintf(stderr, "hookfloor: cannot attach to sys_exit\n");
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[2], &argv[2]);
		perror(argv[2]);
		_exit(127);
	}
	int status = 1;
	waitpid(pid, &status, 0);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
