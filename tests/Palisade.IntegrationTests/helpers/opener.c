// Test helper for the policy engine: opens and prints a file in the way the test asks,
// connects, or drops a marker. Exits 0 when it got to the end.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int dump(int fd)
{
	char buf[4096];
	ssize_t n;
	if (fd < 0) {
		perror("open");
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	close(fd);
	return 0;
}

/* A user function for uprobe policies: not inlined, so it has a symbol and a call. */
__attribute__((noinline, used)) int pal_uprobe_target(int n, const char *word)
{
	__asm__ volatile("" ::: "memory");
	return n + (int)strlen(word);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "marker") == 0) {
		// First thing: prove the program ran.
		int fd = open(argv[2], O_CREAT | O_WRONLY, 0644);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: opener open PATH [N] | openat DIR NAME | connect IP PORT | listen|serve IP PORT | udp IP PORT [recv] | setuid UID | marker PATH\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(argv[1], "open") == 0) {
		int times = argc > 3 ? atoi(argv[3]) : 1;
		int rc = 0;
		for (int i = 0; i < times; i++)
			rc |= dump(open(argv[2], O_RDONLY));
		return rc;
	}
	if (strcmp(argv[1], "openat") == 0) {
		int dir = open(argv[2], O_RDONLY | O_DIRECTORY);
		if (dir < 0) {
			perror("open dir");
			return 1;
		}
		return dump(openat(dir, argv[3], O_RDONLY));
	}
	if (strcmp(argv[1], "call") == 0) {
		int r = pal_uprobe_target(7, argv[2]);
		printf("called %d\n", r);
		return 0;
	}
	if (strcmp(argv[1], "listen") == 0 || strcmp(argv[1], "serve") == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
		inet_pton(AF_INET, argv[2], &sa.sin_addr);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 4) != 0) {
			perror("listen");
			return 1;
		}
		printf("listening\n");
		if (argv[1][0] == 's') {
			int c = accept(s, NULL, NULL);
			if (c < 0) {
				perror("accept");
				return 1;
			}
			printf("accepted\n");
			close(c);
		}
		close(s);
		return 0;
	}
	if (strcmp(argv[1], "udp") == 0) {
		// udp IP PORT: one datagram; udp IP PORT recv: bind there and wait for one.
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
		char buf[64];
		inet_pton(AF_INET, argv[2], &sa.sin_addr);
		if (argc > 4 && strcmp(argv[4], "recv") == 0) {
			if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
				perror("bind");
				return 1;
			}
			printf("bound\n");
			ssize_t n = recv(s, buf, sizeof(buf), 0);
			printf("received %zd\n", n);
			return n > 0 ? 0 : 1;
		}
		if (sendto(s, "palisade", 8, 0, (struct sockaddr *)&sa, sizeof(sa)) != 8) {
			perror("sendto");
			return 1;
		}
		printf("sent\n");
		return 0;
	}
	if (strcmp(argv[1], "setuid") == 0) {
		// A capability check (CAP_SETUID) the kernel makes for a root process.
		if (setuid(atoi(argv[2])) != 0) {
			perror("setuid");
			return 1;
		}
		printf("setuid done\n");
		return 0;
	}
	if (strcmp(argv[1], "connect") == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
		inet_pton(AF_INET, argv[2], &sa.sin_addr);
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			perror("connect");
			return 1;
		}
		printf("connected\n");
		return 0;
	}
	return 2;
}
