/*
 * Opens one socket of a kind the socket-owner table must name, prints its local port, and
 * waits for a line on stdin before each next step, so a test can look at the table while
 * the socket lives and after it closed.
 *   sockowner listen [ADDR]       TCP listener on ADDR (default 127.0.0.1); "accept" step, then
 *                                 closes the accepted connection, then the listener
 *   sockowner connect PORT [ADDR] TCP client to ADDR:PORT (default 127.0.0.1)
 *   sockowner udp-send            unconnected UDP socket, one sendto(127.0.0.1:9)
 *   sockowner udp-connect         connected UDP socket, one send() to 127.0.0.1:9
 *   sockowner udp-bind            UDP socket bound to 127.0.0.1:0 that only waits
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void step(const char *done)
{
	char line[64];
	if (done)
		printf("%s\n", done);
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		exit(0);
}

static int local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		perror("getsockname");
		exit(1);
	}
	return ntohs(a.sin_port);
}

static struct sockaddr_in address(const char *ip, int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	if (!ip || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *mode = argv[1];
	int tcp = !strcmp(mode, "listen") || !strcmp(mode, "connect");
	int fd = socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	struct sockaddr_in any = address(!strcmp(mode, "listen") && argc > 2 ? argv[2] : NULL, 0), discard = address(NULL, 9);
	if (!strcmp(mode, "listen") || !strcmp(mode, "udp-bind")) {
		if (bind(fd, (struct sockaddr *)&any, sizeof any) != 0) {
			perror("bind");
			return 1;
		}
	}
	if (!strcmp(mode, "listen") && listen(fd, 8) != 0) {
		perror("listen");
		return 1;
	}
	if (!strcmp(mode, "connect")) {
		struct sockaddr_in server = address(argc > 3 ? argv[3] : NULL, argc > 2 ? atoi(argv[2]) : 0);
		if (connect(fd, (struct sockaddr *)&server, sizeof server) != 0) {
			perror("connect");
			return 1;
		}
	}
	if (!strcmp(mode, "udp-send") && sendto(fd, "x", 1, 0, (struct sockaddr *)&discard, sizeof discard) != 1) {
		perror("sendto");
		return 1;
	}
	if (!strcmp(mode, "udp-connect")) {
		if (connect(fd, (struct sockaddr *)&discard, sizeof discard) != 0 || send(fd, "x", 1, 0) != 1) {
			perror("udp connect/send");
			return 1;
		}
	}
	printf("%d\n", local_port(fd));
	if (!strcmp(mode, "listen")) {
		step(NULL);
		int conn = accept(fd, NULL, NULL);
		if (conn < 0) {
			perror("accept");
			return 1;
		}
		step("accepted");
		close(conn);
		step("closed-conn");
	} else {
		step(NULL);
	}
	close(fd);
	step("closed");
	return 0;
}
